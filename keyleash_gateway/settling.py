"""A forwarded call's charge against the hold its Authorize placed (proxy.py's last step):
the vendor's cost from its answer, a release (charge 0) when the vendor did nothing, and no
charge when the outcome is unknown (the hold stays until a retry with the same
Idempotency-Key settles it). Charges go through Keyleash.charge: the gateway's outbox, then
Metering (charge_retries.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from keyleash.vault.v1 import vault_pb2
from keyleash_core.money import Money
from keyleash_gateway.keyleash import AuthorizeCall, ChargeCall, Keyleash
from keyleash_gateway.streaming import StreamEnd
from keyleash_gateway.vendors import Vendor
from keyleash_gateway.vendors.base import Cost, Endpoint

log = logging.getLogger("keyleash.gateway")


@dataclass(frozen=True)
class Forward:
    """One allowed call on its way: what it is, and the decision that allowed it."""

    vendor: Vendor
    endpoint: Endpoint
    call: AuthorizeCall
    decision: vault_pb2.AuthorizeResponse

    @property
    def parts(self) -> tuple[Vendor, Endpoint, AuthorizeCall, vault_pb2.AuthorizeResponse]:
        return self.vendor, self.endpoint, self.call, self.decision


class CallCharges:
    """Charges and releases the holds of forwarded calls. One per ProxyCall."""

    def __init__(self, keyleash: Keyleash) -> None:
        self._keyleash = keyleash
        self._settling: set[asyncio.Task[None]] = set()

    def settle_later(
        self, forward: Forward, status: int, latency_ms: int, cost: Cost | None, end: StreamEnd
    ) -> None:
        """Charges a relayed stream in a task of its own: the agent already has the whole
        answer, and a cancelled handler (the agent left) still gets its charge."""
        task = asyncio.create_task(self._settle_streamed(forward, status, latency_ms, cost, end))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_streamed(
        self, forward: Forward, status: int, latency_ms: int, cost: Cost | None, end: StreamEnd
    ) -> None:
        try:
            await self.settle(forward, status, latency_ms, cost, end)
        except Exception:
            # Nobody awaits this task: say so here. The hold stays counted (fail safe).
            log.exception(
                "charge of a streamed %s call failed; its hold stays", forward.vendor.name
            )

    async def drain(self) -> None:
        """Waits for the charges of streams that have ended (at shutdown)."""
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    async def settle(
        self, forward: Forward, status: int, latency_ms: int, cost: Cost | None, end: StreamEnd
    ) -> None:
        vendor, endpoint, call, decision = forward.parts
        outcome = {"upstream_status": str(status), "latency_ms": str(latency_ms)}
        # One line per forwarded call, with the key's id (never its secret) and both costs.
        log.info(
            "proxied key=%s run=%s %s %s %s status=%d latency_ms=%d estimate=%s cost=%s"
            " vendor_id=%s outcome=%s",
            decision.key_id, call.agent_run_id or "-", vendor.name, call.method, call.path,
            status, latency_ms, endpoint.estimate or "-", cost.amount if cost else "unknown",
            cost.vendor_request_id if cost else "-", end.value,
        )  # fmt: skip
        if cost is None:
            log.warning(
                "outcome unknown: key %s %s answered %d; hold %s kept",
                decision.key_id, endpoint.name, status, decision.reservation_id,
            )  # fmt: skip
            return
        if cost.amount.micros == 0 and not decision.reservation_id:
            return  # nothing held, nothing spent: the decision's audit record is the trace
        if cost.usage is not None and not cost.usage.reported:
            log.warning(
                "key %s %s: usage not (fully) reported (%s); charged the estimate for the rest",
                decision.key_id, endpoint.name, end.value,
            )  # fmt: skip
        await self._keyleash.charge(
            ChargeCall(
                request_id=call.request_id + "-charge",
                key_id=decision.key_id,
                reservation_id=decision.reservation_id,
                amount=cost.amount,
                vendor=vendor.name,
                endpoint=f"{call.method} {call.path}",
                agent_run_id=call.agent_run_id,
                vendor_request_id=cost.vendor_request_id,
                cost_source=cost.source,
                reason="gateway",
                attributes=outcome | {"outcome": end.value},
                usage=cost.usage,
            )
        )

    async def release(
        self,
        call: AuthorizeCall,
        decision: vault_pb2.AuthorizeResponse,
        vendor: Vendor,
        endpoint: Endpoint,
        why: str,
    ) -> None:
        if not decision.reservation_id:
            return
        currency = endpoint.estimate.currency if endpoint.estimate else "USD"
        await self._keyleash.charge(
            ChargeCall(
                request_id=call.request_id + "-release",
                key_id=decision.key_id,
                reservation_id=decision.reservation_id,
                amount=Money(currency, 0),
                vendor=vendor.name,
                endpoint=f"{call.method} {call.path}",
                agent_run_id=call.agent_run_id,
                vendor_request_id="",
                cost_source="released",
                reason=why,
                attributes={"outcome": "not_sent"},
            )
        )
