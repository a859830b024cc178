"""Charges Metering could not record when a call ended, sent again until it records them.

A call the gateway forwarded and the vendor answered has cost money whether or not Metering was
reachable at that moment. The agent gets the vendor's answer either way and the call's hold
stays counted, so its caps err on the safe side; but until the charge is recorded the billing
stream lacks the event and the hold, not the actual cost, is what the windows count. So a
charge that failed for a passing reason (UNAVAILABLE, DEADLINE_EXCEEDED: Metering restarting,
a network blip) is sent again in the background with backoff, under the same request_id, so
Metering counts it exactly once however many attempts reach it. A refusal (a malformed charge,
a hold that is not the key's) is logged and not retried: sending it again cannot change it.

With an outbox (KEYLEASH_GATEWAY_STATE_DIR, charge_outbox.py) every charge goes this way: it is
on disk before the agent gets its answer and sent in the background at once (`durable`), so
the answer does not wait for Metering's commit, and a gateway that starts sends again what the
last one left. The call's hold keeps the cap exact meanwhile: it counts the call until its
charge replaces it. Without an outbox the gateway waits for Metering before answering, and a
charge waiting when the process dies is lost to the billing stream (its hold stays counted
until it expires): at a clean stop each gets one last attempt, and any left is logged at ERROR
with its request_id, key and amount (never a secret), for an operator to replay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from keyleash.client.errors import DeadlineExceeded, KeyleashError, Unavailable
from keyleash.metering.v1 import metering_pb2
from keyleash_gateway.charge_outbox import ChargeOutbox

log = logging.getLogger("keyleash.gateway")

RETRYABLE: tuple[type[KeyleashError], ...] = (Unavailable, DeadlineExceeded)
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 15.0
GIVE_UP_AFTER_SECONDS = 3600.0  # the hold stays counted meanwhile; a day-long outage is an incident
MAX_WAITING = 100_000  # bounded memory: beyond it, a charge is logged as abandoned at once

Send = Callable[[metering_pb2.ChargeRequest], Awaitable[Any]]


def describe(request: metering_pb2.ChargeRequest) -> str:
    """What an operator needs to replay a charge: ids and amount, never a secret."""
    amount = f"{request.amount.micros} {request.amount.currency_code} micros"
    return (
        f"charge {request.request_id} key {request.key_id} hold {request.reservation_id or '-'}"
        f" {amount}"
    )


class ChargeRetries:
    """Background re-sends of charges; `add` never waits."""

    def __init__(
        self,
        send: Send,
        *,
        first_delay: float = FIRST_DELAY_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS,
        give_up_after: float = GIVE_UP_AFTER_SECONDS,
        max_waiting: int = MAX_WAITING,
        clock: Callable[[], float] = time.monotonic,
        outbox: ChargeOutbox | None = None,
    ) -> None:
        self._send = send
        self._outbox = outbox
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._give_up_after = give_up_after
        self._max_waiting = max_waiting
        self._clock = clock
        self._waiting: dict[asyncio.Task[None], metering_pb2.ChargeRequest] = {}

    @property
    def durable(self) -> bool:
        """True with an outbox: a charge handed over by `add` survives the process dying."""
        return self._outbox is not None

    @property
    def waiting(self) -> int:
        """Charges not yet recorded and still being retried."""
        return len(self._waiting)

    def resume(self) -> int:
        """Opens the outbox (if any) and sends again what an earlier process left waiting."""
        if self._outbox is None:
            log.info("no KEYLEASH_GATEWAY_STATE_DIR: charges waiting to be resent live in memory")
            return 0
        left = self._outbox.open()
        for request in left:
            self._schedule(request, first_delay=0.0)
        if left:
            log.info("sending again %d charge(s) a previous gateway left waiting", len(left))
        return len(left)

    async def add(self, request: metering_pb2.ChargeRequest, *, fresh: bool = False) -> None:
        """Durable on return when there is an outbox; sent in the background: at once when
        `fresh` (not attempted yet), else after the first delay."""
        if self._outbox is not None:
            try:
                await self._outbox.add(request)
            except OSError as error:
                log.error("charge outbox not written (%s): %s waits in memory only",
                          error, describe(request))  # fmt: skip
        if len(self._waiting) >= self._max_waiting:
            fate = "left in the outbox for the next start" if self._outbox else "abandoned"
            log.error("%s (too many charges waiting): %s; its hold stays", fate,
                      describe(request))  # fmt: skip
            return
        self._schedule(request, 0.0 if fresh else self._first_delay, fresh=fresh)

    def _schedule(
        self, request: metering_pb2.ChargeRequest, first_delay: float, *, fresh: bool = False
    ) -> None:
        task = asyncio.create_task(self._retry(request, first_delay, fresh))
        self._waiting[task] = request
        task.add_done_callback(self._waiting.pop)

    def _settled(self, request: metering_pb2.ChargeRequest) -> None:
        if self._outbox is not None:
            try:
                self._outbox.done(request.request_id)
            except OSError as error:  # only costs a resend Metering recognises
                log.warning("charge outbox not updated (%s) for %s", error, request.request_id)

    async def _retry(
        self, request: metering_pb2.ChargeRequest, first_delay: float, fresh: bool
    ) -> None:
        started = self._clock()
        delay = first_delay
        while True:
            if delay:
                await asyncio.sleep(delay)
            if await self._attempt(request, fresh):
                self._settled(request)
                return
            if self._clock() - started >= self._give_up_after:
                log.error("abandoned after %.0f s: %s; its hold stays", self._give_up_after,
                          describe(request))  # fmt: skip
                self._settled(request)
                return
            fresh = False
            delay = min(delay * 2, self._max_delay) if delay else self._first_delay

    async def _attempt(self, request: metering_pb2.ChargeRequest, first: bool = False) -> bool:
        """True when the charge is settled one way or the other (recorded, or refused)."""
        try:
            await self._send(request)
        except RETRYABLE as error:
            if first:
                log.warning("%s not recorded now (%s); its hold stays and it is sent again",
                            describe(request), error.code)  # fmt: skip
            else:
                log.debug("%s not recorded yet (%s)", describe(request), error.code)
            return False
        except KeyleashError as error:
            log.error("refused (%s %s): %s; its hold stays, not retried", error.code,
                      error.reason, describe(request))  # fmt: skip
            return True
        if not first:
            log.info("recorded on retry: %s", describe(request))
        return True

    async def close(self, last_attempt_seconds: float = 5.0) -> None:
        """One last attempt for each waiting charge (within `last_attempt_seconds`); the rest
        are logged."""
        if not self._waiting:
            if self._outbox is not None:
                self._outbox.close()
            return
        waiting = list(self._waiting.items())
        for task, _request in waiting:
            task.cancel()
        await asyncio.gather(*(task for task, _ in waiting), return_exceptions=True)
        attempts = [asyncio.ensure_future(self._attempt(request)) for _, request in waiting]
        done, pending = await asyncio.wait(attempts, timeout=last_attempt_seconds)
        for attempt in pending:
            attempt.cancel()
        for attempt, (_task, request) in zip(attempts, waiting, strict=True):
            if attempt in done and not attempt.cancelled() and attempt.result():
                self._settled(request)
            elif self._outbox is not None:
                log.warning("left in the outbox for the next start: %s", describe(request))
            else:
                log.error("abandoned at shutdown: %s; its hold stays", describe(request))
        if self._outbox is not None:
            self._outbox.close()
