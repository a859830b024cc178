"""Charge, RecordUsage and StreamUsage: price the event, commit it to Postgres (group commit;
durable before the RPC returns), then settle the hold and the counters in Redis exactly once per
newly recorded event (`domain/settle.py` plans it, `settle.lua` runs it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from keyleash_core.auth import Credential
from keyleash_core.clock import Clock
from keyleash_core.errors import (
    FailedPrecondition,
    KeyleashError,
    PermissionDenied,
    StoreUnavailable,
)
from keyleash_core.fx import FxTable, cap_currencies, conversions
from keyleash_core.fx.store import FxRates
from keyleash_core.money import Money
from keyleash_core.reasons import ErrorReason
from metering_service.domain.events import (
    NO_ATTRIBUTES,
    BillingEvent,
    Kind,
    WriteResult,
    charge_kind,
    new_event_id,
)
from metering_service.domain.pricing import usage_cost_micros
from metering_service.domain.settle import SettleParts, settle_call, settle_calls
from metering_service.pricing import CURRENCY, ModelPrice
from metering_service.store.billing import PendingWrite
from metering_service.store.hot import Settled, Settlements
from metering_service.store.keys import KeyChain
from metering_service.store.reservations import ReservationOwners
from metering_service.store.tenants import TenantBudgets, TenantView, view_from_hash
from metering_service.store.writer import GroupCommitWriter
from metering_service.usecases.key_access import KeyAccess
from metering_service.usecases.model_prices import ModelPrices

log = logging.getLogger("keyleash.metering")

MAX_SETTLE_ATTEMPTS = 3
# Settles in flight at once for one batch: each may take a Redis connection (a tenant missing
# from Redis is loaded by every settle that finds it missing), and the pool holds 256; a batch
# of 1,000 (BatchRecordUsage) settled all at once ran out of connections.
SETTLE_CONCURRENCY = 128


class EventSpec(NamedTuple):
    """A validated request to record one event (Charge or RecordUsage), before pricing (a named
    tuple, as BillingEvent is: one per ingested event)."""

    request_id: str
    key_id: str
    digest: bytes
    occur_time_us: int
    reservation_id: str = ""
    amount: Money | None = None  # None for usage: priced from the table
    agent_run_id: str = ""
    trace_id: str = ""
    vendor: str = ""
    endpoint: str = ""
    reason: str = ""
    vendor_request_id: str = ""
    cost_source: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    attributes: Mapping[str, str] = NO_ATTRIBUTES


@dataclass(frozen=True)
class Recorded:
    """The answer to one Charge or RecordUsage."""

    event: BillingEvent
    duplicate: bool
    tenant: TenantView | None


class SpendRecorder:
    """Records spend. One per process; safe for concurrent use."""

    def __init__(
        self,
        *,
        access: KeyAccess,
        writer: GroupCommitWriter,
        settlements: Settlements,
        tenants: TenantBudgets,
        prices: ModelPrices,
        reservations: ReservationOwners,
        clock: Clock,
        fx: FxRates,
    ) -> None:
        self._reservations = reservations
        self._access = access
        self.keys = access.keys
        self.writer = writer
        self.settlements = settlements
        self.tenants = tenants
        self._prices = prices
        self._fx = fx
        self.clock = clock
        self._settle_parts = SettleParts()

    def _event(
        self,
        chain: KeyChain,
        spec: EventSpec,
        kind: Kind,
        amount: Money,
        cost_source: str | None = None,
    ) -> BillingEvent:
        me = chain.key
        return BillingEvent(
            event_id=new_event_id(),
            request_id=spec.request_id,
            tenant_id=me.tenant_id,
            key_id=me.key_id,
            parent_key_id=me.parent_key_id,
            key_path=me.key_path,
            agent_id=me.agent_id,
            kind=kind,
            amount=amount,
            occur_time_us=spec.occur_time_us,
            agent_run_id=spec.agent_run_id,
            trace_id=spec.trace_id,
            vendor=spec.vendor,
            endpoint=spec.endpoint,
            model=spec.model,
            input_tokens=spec.input_tokens,
            output_tokens=spec.output_tokens,
            cached_input_tokens=spec.cached_input_tokens,
            reason=spec.reason,
            cost_source=spec.cost_source if cost_source is None else cost_source,
            vendor_request_id=spec.vendor_request_id,
            reservation_id=spec.reservation_id,
            attributes=dict(spec.attributes) if spec.attributes else NO_ATTRIBUTES,
        )

    async def _priced(
        self, chains: Sequence[KeyChain], specs: Sequence[EventSpec]
    ) -> list[BillingEvent]:
        """Each spec's event, priced (usage by its model's price, looked up once per tenant
        and model in the batch) and converted (`_converted`)."""
        prices: dict[tuple[str, str], tuple[ModelPrice, str]] = {}
        for chain, spec in zip(chains, specs, strict=True):
            model = (chain.key.tenant_id, spec.model)
            if spec.amount is None and model not in prices:
                prices[model] = await self._prices.price_of(*model)
        events = []
        fx_table: FxTable | None = None
        for chain, spec in zip(chains, specs, strict=True):
            if spec.amount is not None:
                event = self._event(chain, spec, charge_kind(spec.amount.micros), spec.amount)
            else:
                price, source = prices[(chain.key.tenant_id, spec.model)]
                cost = usage_cost_micros(
                    price, spec.input_tokens, spec.output_tokens, spec.cached_input_tokens
                )
                event = self._event(chain, spec, Kind.USAGE, Money(CURRENCY, cost), source)
            wanted = cap_currencies(chain.records) - {event.amount.currency}
            if wanted and event.amount.micros != 0:
                if fx_table is None:  # read once per batch, and only when a cap needs it
                    fx_table = await self._fx.table()
                event = _converted(chain, event, wanted, fx_table)
            events.append(event)
        return events

    async def record(self, credential: Credential, spec: EventSpec) -> Recorded:
        """Charge or RecordUsage: commit (group-committed), then settle if newly recorded."""
        (recorded,) = await self.record_many(credential, [spec])
        return recorded

    async def record_many(
        self, credential: Credential, specs: Sequence[EventSpec], *, tenant_id: str = ""
    ) -> list[Recorded]:
        """Records every spec or fails as a whole (no partial errors); durable on return.
        With `tenant_id`, every key must be that tenant's (BatchRecordUsage)."""
        by_key = {}
        for key_id in dict.fromkeys(s.key_id for s in specs):  # once per key in a batch
            by_key[key_id] = await self._access.chain_for(credential, key_id)
        chains = [by_key[s.key_id] for s in specs]
        if tenant_id:
            _same_tenant(chains, tenant_id)
        await self._own_reservations(chains, specs)
        events = await self._priced(chains, specs)
        outcomes = await self.writer.write_many(
            [PendingWrite(e, s.digest) for e, s in zip(events, specs, strict=True)]
        )
        results: list[WriteResult] = []
        for outcome in outcomes:
            if isinstance(outcome, KeyleashError):
                raise outcome
            results.append(outcome)
        if len(results) == 1:  # a lone Charge: the batcher shares its trip with concurrent ones
            return [await self._after_commit(chains[0], results[0])]
        return await self._settle_batch(chains, results)

    async def _settle_batch(
        self, chains: Sequence[KeyChain], results: Sequence[WriteResult]
    ) -> list[Recorded]:
        """One pipeline settles the whole batch, a key's new events in groups (`settle_calls`).
        An event it could not finish (a policy changed, the tenant not in Redis, a script
        error) goes the one-by-one way after it: its settled marker makes that a no-op if the
        first settle applied it."""
        calls = settle_calls(
            [(c.records, r.event, r.duplicate) for c, r in zip(chains, results, strict=True)],
            self.clock.now_ms(),
            self._settle_parts,
        )
        try:
            first = await self.settlements.settle_many([call for call, _members in calls])
        except StoreUnavailable as error:  # not acknowledged: see _after_commit
            log.warning("%d events recorded but not settled: %s", len(results), error)
            raise
        recorded: list[Recorded | None] = [None] * len(results)
        again: list[int] = []
        for (_call, members), settled in zip(calls, first, strict=True):
            if isinstance(settled, Settled) and settled.status == "ok" and settled.tenant == "ok":
                # A group's events all see the tenant as it stands after the group.
                tenant = _view(results[members[0]].event.tenant_id, settled)
                for i in members:
                    recorded[i] = Recorded(results[i].event, results[i].duplicate, tenant)
            else:
                again.extend(members)
        again.sort()
        for start in range(0, len(again), SETTLE_CONCURRENCY):
            chunk = again[start : start + SETTLE_CONCURRENCY]
            done = await asyncio.gather(*(self._after_commit(chains[i], results[i]) for i in chunk))
            for i, one in zip(chunk, done, strict=True):
                recorded[i] = one
        return [one for one in recorded if one is not None]

    async def _own_reservations(
        self, chains: Sequence[KeyChain], specs: Sequence[EventSpec]
    ) -> None:
        """A key settles only the holds it placed (whoever the caller is: admin and service
        name the key, and the reservation must be that key's). One Redis round trip for all."""
        named = [(c, s) for c, s in zip(chains, specs, strict=True) if s.reservation_id]
        if not named:
            return
        placed = await self._reservations.placed_by_each(
            [(c.key.tenant_id, c.key.key_id, s.reservation_id) for c, s in named]
        )
        for (chain, spec), ok in zip(named, placed, strict=True):
            if not ok:
                raise FailedPrecondition(
                    f"reservation {spec.reservation_id!r} does not exist or was not placed by "
                    f"{chain.key.name}",
                    reason=ErrorReason.RESERVATION_NOT_FOUND,
                    metadata={"reservation_id": spec.reservation_id[:128], "key": chain.key.name},
                )

    async def _after_commit(self, chain: KeyChain, outcome: WriteResult) -> Recorded:
        try:
            # Duplicates settle too: the event's marker makes that a no-op unless the first
            # attempt never got to settle (it crashed after the commit).
            tenant = await self._settle(chain, outcome.event, outcome.duplicate)
        except StoreUnavailable as error:
            # Committed but not counted in the Redis windows, and nothing rebuilds a key Redis
            # still holds: so it is not acknowledged. The caller's retry (same request_id) finds
            # it recorded (duplicate) and settles it then, exactly once.
            log.warning("event %s recorded but not settled: %s", outcome.event.event_id, error)
            raise
        return Recorded(outcome.event, outcome.duplicate, tenant)

    async def _settle(
        self, chain: KeyChain, event: BillingEvent, duplicate: bool
    ) -> TenantView | None:
        now = self.clock.now_ms()
        for _attempt in range(MAX_SETTLE_ATTEMPTS):
            call = settle_call(
                chain.records, event, now, duplicate=duplicate, parts=self._settle_parts
            )
            settled = await self.settlements.settle(call)
            if settled.status == "ok":
                break
            chain = await self.keys.chain(chain.key.key_id, fresh=True)
        else:
            log.warning("event %s not settled: the key's policy kept changing", event.event_id)
            return await self._tenant_from_redis(event.tenant_id)
        if settled.tenant == "missing":
            await self.tenants.ensure_loaded(event.tenant_id, now)
            return await self.tenants.from_redis(event.tenant_id)
        if settled.tenant == "stale":
            await self.tenants.reload(event.tenant_id, now)
            return await self.tenants.from_redis(event.tenant_id)
        return _view(event.tenant_id, settled)

    async def _tenant_from_redis(self, tenant_id: str) -> TenantView | None:
        view = await self.tenants.from_redis(tenant_id)
        if view is None:
            await self.tenants.ensure_loaded(tenant_id, self.clock.now_ms())
            view = await self.tenants.from_redis(tenant_id)
        return view


def _converted(
    chain: KeyChain, event: BillingEvent, wanted: frozenset[str], table: FxTable
) -> BillingEvent:
    """The event with its amount in every other currency (`wanted`) a cap of the chain is in,
    at the rate in force now (rounded up). A pair without a rate refuses the event (nothing is
    recorded): counting it nowhere would let spend pass the cap unseen."""
    found = conversions(table, event.amount, wanted)
    missing = sorted(wanted - set(found))
    if missing:
        raise FailedPrecondition(
            f"{event.amount.currency} cannot be counted in the {', '.join(missing)} caps of "
            f"{chain.key.name}: the FX table has no rate for the pair (SetExchangeRate)",
            reason=ErrorReason.FX_RATE_UNKNOWN,
            metadata={"currency": event.amount.currency, "cap_currency": missing[0]},
        )
    return event._replace(converted=found)


def _view(tenant_id: str, settled: Settled) -> TenantView:
    return view_from_hash(
        tenant_id, settled.threshold, settled.currency, settled.spent, settled.throttled_until_ms
    )


def _same_tenant(chains: Sequence[KeyChain], tenant_id: str) -> None:
    for chain in chains:
        if chain.key.tenant_id != tenant_id:
            raise PermissionDenied(
                f"key {chain.key.key_id!r} is not a key of tenant {tenant_id!r}",
                metadata={"key_id": chain.key.key_id[:128], "tenant_id": tenant_id[:128]},
            )
