"""Metering's use cases: who may record or read which spend, and the record -> commit -> settle
flow. Orchestrates the pure domain over the stores; Postgres is the source of truth, Redis holds
the counters Authorize reads, settled exactly once per newly recorded event."""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import asyncpg

from keyleash_core.auth import ADMIN, KEY, SERVICE, Credential, secret_hash
from keyleash_core.clock import Clock
from keyleash_core.errors import (
    InvalidArgument,
    KeyleashError,
    PermissionDenied,
    StoreUnavailable,
    Unauthenticated,
)
from keyleash_core.keyrecord import parse_key_name
from keyleash_core.money import Money
from keyleash_core.pricing import CURRENCY, ModelPrice, PriceTable
from metering_service.domain.events import BillingEvent, Kind, WriteResult, charge_kind
from metering_service.domain.pricing import price_for, usage_cost_micros
from metering_service.domain.settle import settle_call
from metering_service.store import billing
from metering_service.store.billing import EventFilter, PendingWrite
from metering_service.store.hot import Settlements
from metering_service.store.keys import KeyChain, KeyDirectory
from metering_service.store.prices import TenantPrices
from metering_service.store.tenants import TenantBudgets, TenantView, view_from_hash
from metering_service.store.writer import GroupCommitWriter

log = logging.getLogger("keyleash.metering")

MAX_SETTLE_ATTEMPTS = 3


@dataclass(frozen=True)
class EventSpec:
    """A validated request to record one event (Charge or RecordUsage), before pricing."""

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
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """The answer to one Charge or RecordUsage."""

    event: BillingEvent
    duplicate: bool
    tenant: TenantView | None


class Meter:
    """Recording and reading spend. One per process; safe for concurrent use."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        keys: KeyDirectory,
        writer: GroupCommitWriter,
        settlements: Settlements,
        tenants: TenantBudgets,
        prices: PriceTable,
        tenant_prices: TenantPrices,
        pepper: bytes,
        clock: Clock,
    ) -> None:
        self.pool = pool
        self.keys = keys
        self.writer = writer
        self.settlements = settlements
        self.tenants = tenants
        self.prices = prices
        self.tenant_prices = tenant_prices
        self.pepper = pepper
        self.clock = clock

    # ---- credentials ----------------------------------------------------------------------

    def _secret_hash(self, secret: str) -> bytes:
        return secret_hash(self.pepper, secret)

    async def _chain_for(self, credential: Credential, key_id: str) -> KeyChain:
        """The key's chain, if the caller may record spend for it."""
        chain = await self.keys.chain(key_id)
        if credential.kind in (ADMIN, SERVICE):
            return chain
        if credential.kind == KEY and hmac.compare_digest(
            self._secret_hash(credential.token), chain.secret_hash
        ):
            return chain
        raise PermissionDenied("a key holder may record spend only for its own key")

    async def _caller_key(self, credential: Credential) -> KeyChain:
        key_id = await self.keys.key_id_for_hash(self._secret_hash(credential.token))
        if key_id is None:
            raise Unauthenticated("the key credential names no key")
        return await self.keys.chain(key_id)

    # ---- recording ------------------------------------------------------------------------

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
            event_id=str(uuid.uuid4()),
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
            attributes=dict(spec.attributes),
        )

    async def _priced(self, chain: KeyChain, spec: EventSpec) -> BillingEvent:
        if spec.amount is not None:
            return self._event(chain, spec, charge_kind(spec.amount.micros), spec.amount)
        price, source = await self.price_of(chain.key.tenant_id, spec.model)
        cost = usage_cost_micros(
            price, spec.input_tokens, spec.output_tokens, spec.cached_input_tokens
        )
        return self._event(chain, spec, Kind.USAGE, Money(CURRENCY, cost), source)

    async def price_of(self, tenant_id: str, model: str) -> tuple[ModelPrice, str]:
        """The price a tenant pays for a model (its own, else the shipped table's) and its
        source, or FAILED_PRECONDITION naming an unknown model."""
        own = await self.tenant_prices.get(tenant_id, model)
        if own is not None:
            return own, f"tenant:{tenant_id}"
        return price_for(self.prices, model), self.prices.cost_source

    async def set_tenant_price(
        self, credential: Credential, tenant_id: str, price: ModelPrice | None, model: str
    ) -> tuple[ModelPrice, str]:
        """Sets or (None) clears a tenant's own price; returns the price now in force."""
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin credential may set prices")
        await self.tenant_prices.set(tenant_id, price, model)
        return await self.price_of(tenant_id, model)

    async def record(self, credential: Credential, spec: EventSpec) -> Recorded:
        """Charge or RecordUsage: commit (group-committed), then settle if newly recorded."""
        (recorded,) = await self.record_many(credential, [spec])
        return recorded

    async def record_many(
        self, credential: Credential, specs: Sequence[EventSpec]
    ) -> list[Recorded]:
        """Records every spec or fails as a whole (no partial errors); durable on return."""
        chains = [await self._chain_for(credential, s.key_id) for s in specs]
        events = [await self._priced(c, s) for c, s in zip(chains, specs, strict=True)]
        outcomes = await self.writer.write_many(
            [PendingWrite(e, s.digest) for e, s in zip(events, specs, strict=True)]
        )
        results: list[WriteResult] = []
        for outcome in outcomes:
            if isinstance(outcome, KeyleashError):
                raise outcome
            results.append(outcome)
        return list(
            await asyncio.gather(
                *(self._after_commit(c, r) for c, r in zip(chains, results, strict=True))
            )
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
            call = settle_call(chain.records, event, now, duplicate=duplicate)
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
        return view_from_hash(
            event.tenant_id,
            settled.threshold,
            settled.currency,
            settled.spent,
            settled.throttled_until_ms,
        )

    async def _tenant_from_redis(self, tenant_id: str) -> TenantView | None:
        view = await self.tenants.from_redis(tenant_id)
        if view is None:
            await self.tenants.ensure_loaded(tenant_id, self.clock.now_ms())
            view = await self.tenants.from_redis(tenant_id)
        return view

    # ---- tenants --------------------------------------------------------------------------

    @staticmethod
    def _admin_only(credential: Credential) -> None:
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin credential may read or change tenant budgets")

    async def set_budget(
        self, credential: Credential, tenant_id: str, threshold: Money | None, lift: bool
    ) -> TenantView:
        self._admin_only(credential)
        now = self.clock.now_ms()
        await self.tenants.set_budget(tenant_id, threshold, lift, now)
        return await self.tenants.from_postgres(tenant_id, now)

    async def get_tenant(self, credential: Credential, tenant_id: str) -> TenantView:
        self._admin_only(credential)
        return await self.tenants.from_postgres(tenant_id, self.clock.now_ms())

    # ---- reading --------------------------------------------------------------------------

    async def spend_filter(
        self, credential: Credential, subject: str, value: str, f: EventFilter
    ) -> EventFilter:
        """The filter GetSpend sums: the subject, narrowed to what the caller may see."""
        if subject == "key_name":
            parsed = parse_key_name(value)
            if parsed is None:
                raise InvalidArgument("key_name", 'a key name like "tenants/{t}/keys/{k}"')
            f = EventFilter(tenant_id=parsed[0], subtree_of=parsed[1], start_us=f.start_us,
                            end_us=f.end_us)  # fmt: skip
        elif subject == "tenant_id":
            f = EventFilter(tenant_id=value, start_us=f.start_us, end_us=f.end_us)
        elif subject == "agent_id":
            f = EventFilter(agent_id=value, start_us=f.start_us, end_us=f.end_us)
        else:
            f = EventFilter(agent_run_id=value, start_us=f.start_us, end_us=f.end_us)
        if credential.kind in (ADMIN, SERVICE):
            return f
        caller = (await self._caller_key(credential)).key
        if subject == "tenant_id":
            raise PermissionDenied("a key holder may read only its own key's subtree")
        if subject == "key_name":
            target = await self.keys.chain(f.subtree_of)
            if target.key.tenant_id != f.tenant_id or caller.key_id not in target.key.key_path:
                raise PermissionDenied(f"{caller.name} may not read the spend of {value}")
            return f
        return EventFilter(
            tenant_id=caller.tenant_id,
            subtree_of=caller.key_id,
            agent_id=f.agent_id,
            agent_run_id=f.agent_run_id,
            start_us=f.start_us,
            end_us=f.end_us,
        )

    async def spend(
        self, credential: Credential, subject: str, value: str, window: EventFilter
    ) -> tuple[list[Money], int]:
        f = await self.spend_filter(credential, subject, value, window)
        return await billing.spend_totals(self.pool, f)

    @staticmethod
    def check_reader(credential: Credential, f: EventFilter) -> None:
        """Listing and export: admin, or a service naming a tenant."""
        if credential.kind == ADMIN:
            return
        if credential.kind != SERVICE:
            raise PermissionDenied("only admin and service credentials may list billing events")
        if not f.tenant_id:
            raise InvalidArgument("filter.tenant_id", "required for service credentials")

    async def list_events(
        self, credential: Credential, f: EventFilter, after: tuple[int, str] | None, limit: int
    ) -> list[BillingEvent]:
        self.check_reader(credential, f)
        return await billing.list_events(self.pool, f, after, limit)

    def export_events(self, credential: Credential, f: EventFilter) -> AsyncIterator[BillingEvent]:
        self.check_reader(credential, f)
        return billing.export_events(self.pool, f)
