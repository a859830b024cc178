"""Calls to Keyleash that agents make at the same time, sent as one batch.

Each gateway request costs an Authorize and a Charge; per gRPC call the gateway and the
services spend far more CPU on the call itself than on the decision or the charge inside it
(bench/gateway.py prints the CPU per request). So when several requests are in flight, their
Authorizes travel as one AuthorizeBatch and their Charges as one BatchCharge.

No timer: a call goes out alone and at once while fewer than `max_in_flight` sends are under
way; only calls that arrive while every slot is busy wait, and then leave together in the next
send (so one caller sees no added latency, and many callers get batches about as large as the
load). A batch that fails as a whole (one malformed request fails its batch, a batch may meet
a restart) is sent again one call at a time, so each caller gets its own answer; every call
carries a request_id, so a call the batch had already decided or recorded is replayed, never
counted twice.

With `linger` (seconds), used for charges sent after the answer (nobody waits for them), every
call waits up to that long for company instead of leaving alone: a lone caller's charges then
travel a few per BatchCharge too, and stay off the path of its next call's Authorize.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Request = TypeVar("Request")
Response = TypeVar("Response")

MAX_BATCH = 64
MAX_IN_FLIGHT = 4


class Coalescer(Generic[Request, Response]):
    """One per call kind and process; used from one event loop."""

    def __init__(
        self,
        one: Callable[[Request], Awaitable[Response]],
        many: Callable[[Sequence[Request]], Awaitable[Sequence[Response]]],
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
        linger: float = 0.0,
    ) -> None:
        self._one = one
        self._many = many
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._linger = linger
        self._lingering: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self._waiting: list[tuple[Request, asyncio.Future[Response]]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self.batches = 0  # sends of more than one call, for tests and the bench

    async def __call__(self, request: Request) -> Response:
        if self._linger:
            return await self._after_linger(request)
        if self._in_flight < self._max_in_flight and not self._waiting:
            self._in_flight += 1
            try:
                return await self._one(request)
            finally:
                self._in_flight -= 1
                self._start_sends()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        self._start_sends()
        return await future

    async def _after_linger(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()
        self._waiting.append((request, future))
        if len(self._waiting) >= self._max_batch:
            self._start_sends()
        elif self._lingering is None:
            self._lingering = loop.call_later(self._linger, self._lingered)
        return await future

    def _lingered(self) -> None:
        self._lingering = None
        self._start_sends()

    def _start_sends(self) -> None:
        while self._waiting and self._in_flight < self._max_in_flight:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(self, batch: list[tuple[Request, asyncio.Future[Response]]]) -> None:
        try:
            if len(batch) == 1:
                await _settle(batch[0][1], self._one(batch[0][0]))
                return
            try:
                answers = await self._many([request for request, _ in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"{len(answers)} answers to a batch of {len(batch)}")
            except Exception:
                # Each call again on its own: its own answer or its own error.
                await asyncio.gather(*(_settle(f, self._one(r)) for r, f in batch))
                return
            self.batches += 1
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
        finally:
            self._in_flight -= 1
            self._start_sends()


async def _settle(future: asyncio.Future[Response], call: Awaitable[Response]) -> None:
    try:
        answer = await call
    except Exception as error:
        if not future.done():
            future.set_exception(error)
        return
    if not future.done():
        future.set_result(answer)
