"""Authorize and AuthorizeStream: where a call is decided.

The pure checks (scope, endpoint, vendor, attributes, per-call cost) run over the cached
policies; then one Lua script (`authorize.lua`) checks state, expiry, throttle, rate and spend
windows of the key and every ancestor, and on ALLOW consumes the slots and places the hold.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import asyncpg
from opentelemetry import trace

from keyleash_core.clock import Clock, SystemClock
from keyleash_core.errors import AlreadyExists, StoreUnavailable
from keyleash_core.fx import cap_currencies, conversions
from keyleash_core.fx.store import FxRates
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.money import Money
from keyleash_core.reasons import DenyReason
from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.redis.scripts import Scripts
from keyleash_core.tenants import load_tenant
from vault_service.domain.checks import CallRequest, PureDenial, check_call
from vault_service.domain.decision import (
    ChainPlans,
    Outcome,
    OutcomeKind,
    Quota,
    audit_request,
    build_plan,
    denial_verdict,
    parse_outcome,
)
from vault_service.errors import AuditBacklogFull
from vault_service.store.hot import HotKeys
from vault_service.usecases.key_chains import KeyChains

MAX_DECISION_ATTEMPTS = 4


class Decision(NamedTuple):
    """The answer to one Authorize (a named tuple: see Quota in domain/decision.py)."""

    allowed: bool
    reason: DenyReason | None = None
    message: str = ""
    key_id: str = ""
    tenant_id: str = ""
    decision_id: str = ""
    reservation_id: str = ""
    quotas: Sequence[Quota] = ()
    retry_after_ms: int = 0
    approval: str = ""  # the approval request a budget denial opened (approvals.py)
    connections_version: str = ""  # on ALLOW: the tenant's connections version (gateway cache)


# Opens an approval request for a budget denial when the key's policy asks for one: its name.
BudgetDenialHook = Callable[[list[KeyRecord], CallRequest, DenyReason, Quota], Awaitable[str]]


class Authorizer:
    """Decides calls. One per process; safe for concurrent use."""

    def __init__(
        self,
        *,
        chains: KeyChains,
        pool: asyncpg.Pool,
        hot: HotKeys,
        scripts: Scripts,
        clock: Clock,
        audit_max: int = 0,
        audit_max_lag_ms: int = 30_000,
        on_budget_denial: BudgetDenialHook | None = None,
    ) -> None:
        self.on_budget_denial = on_budget_denial
        self.audit_max_lag_ms = audit_max_lag_ms
        self._chains = chains
        self._pool = pool
        self._hot = hot
        self._scripts = scripts
        self._fx = FxRates(pool)
        self.clock = clock
        # 0 turns the audit stream off; otherwise the bound on undrained records per tenant.
        self.audit_max = audit_max
        self._audited_tenants: set[str] = set()
        # With the system clock, scripts decide on Redis's TIME (one clock for every replica),
        # and the spend windows this process places follow it: `_offset_ms` is how far Redis's
        # clock was ahead of ours at the last answer. An injected (test) clock is used as is.
        self._redis_clock = isinstance(clock, SystemClock)
        self._offset_ms = 0
        self._plans = ChainPlans()

    async def authorize(self, secret: str, call: CallRequest) -> Decision:
        chain = await self._chains.for_secret(secret)
        if chain is None:
            return Decision(False, DenyReason.KEY_UNKNOWN, "the key is malformed or unknown")
        for _attempt in range(MAX_DECISION_ATTEMPTS):
            converted = await self._converted(call, _other_cap_currencies(chain, call))
            denial = check_call(chain, call, converted)
            if denial is not None:
                fresh = await self._chains.fresher(secret, chain)
                if fresh is not None:
                    chain = fresh
                    continue
                me = chain[0]
                decision = Decision(
                    False,
                    denial.reason,
                    denial.message,
                    me.key_id,
                    me.tenant_id,
                    decision_id=new_decision_id(),
                )
                await self._record_pure_denial(me, call, denial, decision.decision_id)
                return decision
            outcome = await self._decide(chain, call, converted)
            if outcome.kind in (OutcomeKind.ALLOW, OutcomeKind.DENY):
                return await self._with_approval(chain, call, self._decision(chain[0], outcome))
            if outcome.kind is OutcomeKind.FULL:
                raise AuditBacklogFull()
            if outcome.kind is OutcomeKind.REUSED:
                raise request_id_reused(call)
            if outcome.chain_index == 0:
                await load_tenant(
                    self._pool, self._scripts, chain[0].tenant_id, self.clock.now_ms()
                )
            else:
                chain = await self._chains.refresh(secret, chain)
        raise StoreUnavailable("redis", "the key kept changing while it was being decided")

    async def authorize_batch(self, items: Sequence[tuple[str, CallRequest]]) -> list[Decision]:
        """Decisions for many calls, their scripts pipelined in one round trip, in order.

        Redis runs the pipelined scripts in order, so the decisions happen in request order.
        Calls that need the slow path (a policy denial to double-check, a key to load) take it
        one by one.
        """
        decisions: list[Decision | None] = [None] * len(items)
        planned: list[tuple[int, list[KeyRecord]]] = []
        plans = []
        for index, (secret, call) in enumerate(items):
            chain = await self._chains.for_secret(secret)
            wanted = _other_cap_currencies(chain, call) if chain is not None else frozenset()
            converted = await self._converted(call, wanted) if wanted else {}  # rarely awaited
            if chain is None or check_call(chain, call, converted) is not None:
                decisions[index] = await self.authorize(secret, call)
                continue
            await self.register_audit_tenant(chain[0].tenant_id)
            planned.append((index, chain))
            plans.append(self._plan(chain, call, converted))
        raws = await self._hot.authorize_many(plans) if plans else []
        for (index, chain), raw in zip(planned, raws, strict=True):
            outcome = self._follow(parse_outcome(raw))
            if outcome.kind in (OutcomeKind.ALLOW, OutcomeKind.DENY):
                decision = self._decision(chain[0], outcome)
                call = items[index][1]
                decisions[index] = await self._with_approval(chain, call, decision)
            elif outcome.kind is OutcomeKind.FULL:
                raise AuditBacklogFull()
            elif outcome.kind is OutcomeKind.REUSED:
                raise request_id_reused(items[index][1])
            else:
                decisions[index] = await self.authorize(*items[index])
        return [d for d in decisions if d is not None]

    async def _converted(self, call: CallRequest, wanted: frozenset[str]) -> dict[str, int]:
        """The estimated cost in each `wanted` currency (_other_cap_currencies), at the rate in
        force (rounded up); a pair without a rate is left out, and check_call denies it."""
        cost = call.estimated_cost
        if not wanted or cost is None:
            return {}  # the common case reads no FX table
        found = conversions(await self._fx.table(), cost, wanted)
        return {currency: c.amount.micros for currency, c in found.items()}

    def _plan(
        self, chain: list[KeyRecord], call: CallRequest, converted: dict[str, int]
    ) -> ScriptCall:
        me = chain[0]
        ids = os.urandom(24).hex()  # 96 random bits per id from one read (secrets adds 3 µs)
        return build_plan(
            chain,
            call,
            converted=converted,
            now_ms=self._now_ms(),
            redis_clock=self._redis_clock,
            decision_id="d_" + ids[:24],
            reservation_id="r_" + ids[24:],
            audit=audit_request(me, call, current_trace_id()) if self.audit_max else None,
            audit_max=self.audit_max,
            audit_max_lag_ms=self.audit_max_lag_ms,
            plans=self._plans,
        )

    async def register_audit_tenant(self, tenant_id: str) -> None:
        """Tells the drainers about a tenant's stream, once per tenant and process."""
        if self.audit_max and tenant_id not in self._audited_tenants:
            await self._hot.add_audit_tenant(tenant_id)
            self._audited_tenants.add(tenant_id)

    async def _record_pure_denial(
        self, me: KeyRecord, call: CallRequest, denial: PureDenial, decision_id: str
    ) -> None:
        if not self.audit_max:
            return
        await self.register_audit_tenant(me.tenant_id)
        fields = [
            "v",
            denial_verdict(decision_id, self._now_ms(), denial.reason),
            "q",
            audit_request(me, call, current_trace_id()),
        ]
        if not await self._hot.audit_only(me.tenant_id, self.audit_max, fields):
            raise AuditBacklogFull()

    def _now_ms(self) -> int:
        return self.clock.now_ms() + self._offset_ms

    def _follow(self, outcome: Outcome) -> Outcome:
        if self._redis_clock and outcome.decided_at_ms:
            self._offset_ms = outcome.decided_at_ms - self.clock.now_ms()
        return outcome

    async def _decide(
        self, chain: list[KeyRecord], call: CallRequest, converted: dict[str, int]
    ) -> Outcome:
        await self.register_audit_tenant(chain[0].tenant_id)
        plan = self._plan(chain, call, converted)
        return self._follow(parse_outcome(await self._hot.authorize(plan)))

    async def _with_approval(
        self, chain: list[KeyRecord], call: CallRequest, decision: Decision
    ) -> Decision:
        """A budget denial with the approval request it opened (when the policy says so)."""
        hook = self.on_budget_denial
        if decision.allowed or hook is None or not decision.quotas or decision.reason is None:
            return decision
        if not chain[0].policy.approval_on_denial:
            return decision
        approval = await hook(chain, call, decision.reason, decision.quotas[0])
        return decision._replace(approval=approval) if approval else decision

    def _decision(self, me: KeyRecord, outcome: Outcome) -> Decision:
        allowed = outcome.kind is OutcomeKind.ALLOW
        return Decision(
            allowed=allowed,
            reason=None if allowed else outcome.reason,
            message="allowed" if allowed else _deny_message(outcome),
            key_id=me.key_id,
            tenant_id=me.tenant_id,
            decision_id=outcome.decision_id,
            reservation_id=outcome.reservation_id,
            quotas=outcome.quotas,
            retry_after_ms=max(outcome.retry_after_ms, 0),
            connections_version=outcome.connections_version if allowed else "",
        )


def _other_cap_currencies(chain: list[KeyRecord], call: CallRequest) -> frozenset[str]:
    """The currencies of the chain's caps the call's estimate must be converted into."""
    cost = call.estimated_cost
    if cost is None or cost.micros <= 0:
        return frozenset()
    return cap_currencies(chain) - {cost.currency}


def _deny_message(outcome: Outcome) -> str:
    text = (outcome.reason or "denied").lower().replace("_", " ")
    if outcome.quotas:
        q = outcome.quotas[0]
        text += (
            f": {q.subject} {q.quota} used {_figure(q.used, q.unit)} of {_figure(q.limit, q.unit)}"
        )
    return text


def _figure(amount: int, unit: str) -> str:
    """ "3 requests", or micros of a currency as "2.400000 USD" (the CLI's money format)."""
    return f"{amount} {unit}" if unit == "requests" else str(Money(unit, amount))


def new_decision_id() -> str:
    return "d_" + secrets.token_hex(12)


def current_trace_id() -> str:
    """The OpenTelemetry trace id of the current call (32 hex digits), or "" outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def request_id_reused(call: CallRequest) -> AlreadyExists:
    return AlreadyExists(
        f"request_id {call.request_id!r} was first used for another call; use a new request_id",
        metadata={"request_id": call.request_id[:128]},
    )


def request_digest(serialized: bytes) -> bytes:
    return hashlib.sha256(serialized).digest()
