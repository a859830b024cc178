"""`guard()`: Authorize → the caller's block → Charge, with a stable request_id.

    async with guard(vault, metering, key=secret, scope="stripe.charges.write",
                     estimated_cost=("USD", 2_000_000), vendor="stripe",
                     method="POST", path="/v1/charges", request_id=step_id) as call:
        reply = await stripe_charge(...)
        call.actual_cost = usd_micros(reply.amount)      # default: the estimate
        call.vendor_request_id = reply.id

- Authorize carries the estimated cost and request_id `"{request_id}:authorize"`; a DENY raises
  `RateLimited` (retryable after `retry_after`), `BudgetExhausted` (stop, do not retry),
  `KeyBlocked`, or `Denied`, and the block does not run.
- On normal exit, Charge records `call.actual_cost` against the reservation with request_id
  `"{request_id}:charge"`; the response is left in `call.charge`.
- When the block raises, a zero Charge with request_id `"{request_id}:release"` releases the
  hold, and the exception propagates.

Give the same `request_id` when an agent framework retries a step: the vault answers a retried
Authorize with its first decision and metering records each request_id once, so the step is
charged once however often it is retried. The release has its own id so that a retry succeeding
after a failed attempt still records its charge (a `:charge` id already used by a zero charge
would be refused as REQUEST_ID_REUSED). A retry must report the same actual cost and details: one
reporting others fails with AlreadyExists (REQUEST_ID_REUSED) and charges nothing more. Without
`request_id`, each guard generates one.

After a `Denied`, nothing was consumed, held or charged: retry it (after `retry_after`) with a new
request_id. The vault remembers a request_id's first decision, a DENY included, so the same id
would be denied again.

Credentials: each call uses its client's token; a client without one sends `key` as the bearer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from keyleash.client.errors import raise_for_decision
from keyleash.client.metering import MeteringClient, SyncMeteringClient
from keyleash.client.vault import SyncVaultClient, VaultClient
from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2

MoneyLike = money_pb2.Money | tuple[str, int]


def to_money(value: MoneyLike) -> money_pb2.Money:
    """A Money from a Money or a (currency_code, micros) pair."""
    if isinstance(value, money_pb2.Money):
        return value
    currency, micros = value
    return money_pb2.Money(currency_code=currency, micros=int(micros))


@dataclass
class GuardHandle:
    """What the guarded block sees; set `actual_cost` (and optionally the rest) before leaving."""

    request_id: str
    decision: vault_pb2.AuthorizeResponse
    estimated_cost: money_pb2.Money
    actual_cost: MoneyLike
    vendor_request_id: str = ""
    cost_source: str = ""
    reason: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    charge: metering_pb2.ChargeResponse | None = None

    @property
    def key_id(self) -> str:
        return self.decision.key_id

    @property
    def reservation_id(self) -> str:
        return self.decision.reservation_id


@dataclass(frozen=True)
class _Call:
    key: str
    scope: str
    estimated_cost: money_pb2.Money
    vendor: str
    method: str
    path: str
    attributes: Mapping[str, str]
    request_id: str

    def authorize_request(self) -> vault_pb2.AuthorizeRequest:
        return vault_pb2.AuthorizeRequest(
            key=self.key,
            scope=self.scope,
            vendor=self.vendor,
            method=self.method,
            path=self.path,
            estimated_cost=self.estimated_cost,
            attributes=dict(self.attributes),
            request_id=f"{self.request_id}:authorize",
        )

    def handle(self, decision: vault_pb2.AuthorizeResponse) -> GuardHandle:
        return GuardHandle(self.request_id, decision, self.estimated_cost, self.estimated_cost)

    def charge_request(self, handle: GuardHandle) -> metering_pb2.ChargeRequest:
        estimated = handle.actual_cost is handle.estimated_cost
        return metering_pb2.ChargeRequest(
            request_id=f"{self.request_id}:charge",
            key_id=handle.key_id,
            reservation_id=handle.reservation_id,
            amount=to_money(handle.actual_cost),
            vendor=self.vendor,
            endpoint=f"{self.method} {self.path}".strip(),
            reason=handle.reason,
            vendor_request_id=handle.vendor_request_id,
            cost_source=handle.cost_source or ("estimate" if estimated else "reported"),
            attributes={**self.attributes, **handle.attributes},
        )

    def release_request(self, handle: GuardHandle) -> metering_pb2.ChargeRequest | None:
        if not handle.reservation_id:
            return None
        return metering_pb2.ChargeRequest(
            request_id=f"{self.request_id}:release",
            key_id=handle.key_id,
            reservation_id=handle.reservation_id,
            amount=money_pb2.Money(currency_code=self.estimated_cost.currency_code, micros=0),
            vendor=self.vendor,
            endpoint=f"{self.method} {self.path}".strip(),
            reason="guarded block failed; hold released",
            cost_source="release",
        )


def _call(
    key: str,
    scope: str,
    estimated_cost: MoneyLike,
    vendor: str,
    method: str,
    path: str,
    attributes: Mapping[str, str] | None,
    request_id: str | None,
) -> _Call:
    return _Call(
        key,
        scope,
        to_money(estimated_cost),
        vendor,
        method,
        path,
        dict(attributes or {}),
        request_id or uuid.uuid4().hex,
    )


def _token(client: Any, key: str) -> str | None:
    return None if client.token else key


@asynccontextmanager
async def guard(
    vault: VaultClient,
    metering: MeteringClient,
    *,
    key: str,
    scope: str,
    estimated_cost: MoneyLike,
    vendor: str = "",
    method: str = "",
    path: str = "",
    attributes: Mapping[str, str] | None = None,
    request_id: str | None = None,
    timeout: float | None = None,
) -> AsyncIterator[GuardHandle]:
    """Authorize, run the block, Charge the actual cost (zero on failure). See the module doc."""
    call = _call(key, scope, estimated_cost, vendor, method, path, attributes, request_id)
    decision = await vault.authorize(
        call.authorize_request(), timeout=timeout, token=_token(vault, key)
    )
    handle = call.handle(raise_for_decision(decision))
    try:
        yield handle
    except GeneratorExit:  # closed without running the block's exit: nothing to settle here
        raise
    except BaseException as failure:
        release = call.release_request(handle)
        if release is not None:
            try:
                await metering.charge(release, timeout=timeout, token=_token(metering, key))
            except Exception as release_error:  # the block's failure is what the caller needs
                failure.add_note(f"keyleash: releasing the hold failed: {release_error}")
        raise
    handle.charge = await metering.charge(
        call.charge_request(handle), timeout=timeout, token=_token(metering, key)
    )


@contextmanager
def sync_guard(
    vault: SyncVaultClient,
    metering: SyncMeteringClient,
    *,
    key: str,
    scope: str,
    estimated_cost: MoneyLike,
    vendor: str = "",
    method: str = "",
    path: str = "",
    attributes: Mapping[str, str] | None = None,
    request_id: str | None = None,
    timeout: float | None = None,
) -> Iterator[GuardHandle]:
    """`guard()` for the blocking clients."""
    call = _call(key, scope, estimated_cost, vendor, method, path, attributes, request_id)
    decision = vault.authorize(call.authorize_request(), timeout=timeout, token=_token(vault, key))
    handle = call.handle(raise_for_decision(decision))
    try:
        yield handle
    except GeneratorExit:  # closed without running the block's exit: nothing to settle here
        raise
    except BaseException as failure:
        release = call.release_request(handle)
        if release is not None:
            try:
                metering.charge(release, timeout=timeout, token=_token(metering, key))
            except Exception as release_error:
                failure.add_note(f"keyleash: releasing the hold failed: {release_error}")
        raise
    handle.charge = metering.charge(
        call.charge_request(handle), timeout=timeout, token=_token(metering, key)
    )
