"""The vault's use cases: who may do what to which key, and the decision loop of Authorize.

Orchestrates the pure domain (secrets, checks, decision plans) over the two stores. Postgres is
the source of truth for keys; Redis holds what one decision needs, loaded on demand.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import trace

from keyleash_core.auth import ADMIN, KEY, Credential
from keyleash_core.clock import Clock
from keyleash_core.errors import (
    AuditBacklogFull,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    Unauthenticated,
)
from keyleash_core.keyrecord import KeyRecord, KeyState, parse_key_name
from keyleash_core.postgres import run_db
from keyleash_core.redis_store import Scripts
from keyleash_core.script_call import ScriptCall
from keyleash_core.tenants import load_tenant
from vault_service.domain import secrets as key_secrets
from vault_service.domain.checks import CallRequest, check_call
from vault_service.domain.decision import (
    Outcome,
    Quota,
    audit_request,
    build_plan,
    denial_verdict,
    parse_outcome,
)
from vault_service.store.hot import HotKeys
from vault_service.store.rebuild import rebuild_counters
from vault_service.store.registry import KeyRegistry

log = logging.getLogger("keyleash.vault")

CHAIN_CACHE_SIZE = 100_000
MAX_DECISION_ATTEMPTS = 4


@dataclass(frozen=True)
class Decision:
    """The answer to one Authorize."""

    allowed: bool
    reason: str = ""  # DenyReason name without prefix
    message: str = ""
    key_id: str = ""
    tenant_id: str = ""
    decision_id: str = ""
    reservation_id: str = ""
    quotas: list[Quota] = field(default_factory=list)
    retry_after_ms: int = 0


@dataclass(frozen=True)
class Validation:
    valid: bool
    reason: str
    record: KeyRecord | None
    blocked_by: KeyState | None = None


def chain_state(chain: Sequence[KeyRecord], now_ms: int) -> str:
    """ "" when the chain is usable, else the DenyReason name: revoked > frozen > expired."""
    if any(r.state is KeyState.REVOKED for r in chain):
        return "KEY_REVOKED"
    if any(r.state is KeyState.FROZEN for r in chain):
        return "KEY_FROZEN"
    if any(r.expire_time_ms <= now_ms for r in chain):
        return "KEY_EXPIRED"
    return ""


class VaultAuthority:
    """Keys and decisions. One per process; safe for concurrent use."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        hot: HotKeys,
        scripts: Scripts,
        registry: KeyRegistry,
        pepper: bytes,
        clock: Clock,
        audit_max: int = 0,
    ) -> None:
        self.pool = pool
        self.hot = hot
        self.scripts = scripts
        self.registry = registry
        self.pepper = pepper
        self.clock = clock
        # 0 turns the audit stream off; otherwise the bound on undrained records per tenant.
        self.audit_max = audit_max
        self._audited_tenants: set[str] = set()
        # secret hash -> chain (key first). Only policies are trusted from here: state,
        # expiry and policy_version are re-checked inside the decision script every time.
        self._chains: OrderedDict[str, list[KeyRecord]] = OrderedDict()

    # ---- secrets and chains -------------------------------------------------------------

    def hash_secret(self, secret: str) -> bytes:
        return key_secrets.secret_hash(self.pepper, secret)

    async def chain_for_secret(self, secret: str) -> list[KeyRecord] | None:
        """The chain of the key a secret names (cached), or None when it names no key."""
        if not key_secrets.is_well_formed(secret):
            return None
        digest = self.hash_secret(secret)
        cache_key = digest.hex()
        cached = self._chains.get(cache_key)
        if cached is not None:
            self._chains.move_to_end(cache_key)
            return cached
        chain = await self._resolve_chain(digest)
        if chain is not None:
            self._remember(cache_key, chain)
        return chain

    def _remember(self, cache_key: str, chain: list[KeyRecord]) -> None:
        self._chains[cache_key] = chain
        if len(self._chains) > CHAIN_CACHE_SIZE:
            self._chains.popitem(last=False)

    async def _resolve_chain(self, digest: bytes) -> list[KeyRecord] | None:
        located = await self.hot.resolve(digest.hex())
        if located is not None:
            tenant_id, key_id = located
            (me,) = await self.hot.records(tenant_id, [key_id])
            if me is not None:
                ancestors = await self.hot.records(tenant_id, list(me.ancestor_ids))
                if all(a is not None for a in ancestors):
                    return [me, *(a for a in ancestors if a is not None)]
        record = await self.registry.get_by_hash(digest)
        if record is None:
            return None
        chain = await self.load_chain_from_postgres(record)
        await self.hot.index_secret(digest.hex(), record.tenant_id, record.key_id)
        return chain

    async def load_chain_from_postgres(self, record: KeyRecord) -> list[KeyRecord]:
        """The key and its ancestors from Postgres, each loaded into Redis if it is not."""
        by_id = await self.registry.get_many(record.key_path)
        chain = [by_id[key_id] for key_id in reversed(record.key_path)]
        for link in chain:
            await self.ensure_loaded(link)
        return chain

    async def ensure_loaded(self, record: KeyRecord) -> None:
        """Loads the key with counters rebuilt from billing_events, again if a charge settled
        while Postgres was being read (so the load cannot forget it)."""
        for _attempt in range(MAX_DECISION_ATTEMPTS * 2):
            gen = await self.hot.generation(record)
            now = self.clock.now_ms()
            counters, keys, calls, snapshot = await run_db(
                lambda now=now: rebuild_counters(self.pool, record, now)  # type: ignore[misc]
            )
            if await self.hot.load(record, counters, keys, calls, gen, snapshot):
                return
        raise StoreUnavailable("redis", "the key kept changing while it was being loaded")

    async def refresh_chain(self, secret: str, chain: list[KeyRecord]) -> list[KeyRecord]:
        """Re-reads the chain after the script reported it missing or stale."""
        cache_key = self.hash_secret(secret).hex()
        self._chains.pop(cache_key, None)
        me = await self.registry.get(chain[0].key_id)
        if me is None:
            raise NotFound("the key no longer exists")
        fresh = await self.load_chain_from_postgres(me)
        self._remember(cache_key, fresh)
        return fresh

    # ---- Authorize ----------------------------------------------------------------------

    async def authorize(self, secret: str, call: CallRequest) -> Decision:
        chain = await self.chain_for_secret(secret)
        if chain is None:
            return Decision(False, "KEY_UNKNOWN", "the key is malformed or unknown")
        for _attempt in range(MAX_DECISION_ATTEMPTS):
            denial = check_call(chain, call)
            if denial is not None:
                fresh = await self._fresher_chain(secret, chain)
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
                await self._record_pure_denial(me, call, decision)
                return decision
            outcome = await self._decide(chain, call)
            if outcome.kind in ("allow", "deny"):
                return self._decision(chain[0], outcome)
            if outcome.kind == "full":
                raise AuditBacklogFull()
            if outcome.chain_index == 0:
                await load_tenant(self.pool, self.scripts, chain[0].tenant_id, self.clock.now_ms())
            else:
                chain = await self.refresh_chain(secret, chain)
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
            chain = await self.chain_for_secret(secret)
            if chain is None or check_call(chain, call) is not None:
                decisions[index] = await self.authorize(secret, call)
                continue
            await self.register_audit_tenant(chain[0].tenant_id)
            planned.append((index, chain))
            plans.append(self._plan(chain, call))
        raws = await self.hot.authorize_many(plans) if plans else []
        for (index, chain), raw in zip(planned, raws, strict=True):
            outcome = parse_outcome(raw)
            if outcome.kind in ("allow", "deny"):
                decisions[index] = self._decision(chain[0], outcome)
            elif outcome.kind == "full":
                raise AuditBacklogFull()
            else:
                decisions[index] = await self.authorize(*items[index])
        return [d for d in decisions if d is not None]

    async def _fresher_chain(self, secret: str, chain: list[KeyRecord]) -> list[KeyRecord] | None:
        """Before a policy denial: a newer policy in Redis may allow it (UpdateKeyPolicy)."""
        me = chain[0]
        current = await self.hot.records(me.tenant_id, [r.key_id for r in chain])
        if all(
            c is not None and c.policy_version == r.policy_version
            for c, r in zip(current, chain, strict=True)
        ):
            return None
        return await self.refresh_chain(secret, chain)

    def _plan(self, chain: list[KeyRecord], call: CallRequest) -> ScriptCall:
        me = chain[0]
        return build_plan(
            chain,
            call,
            now_ms=self.clock.now_ms(),
            decision_id=new_decision_id(),
            reservation_id="r_" + secrets.token_hex(12),
            audit=audit_request(me, call, current_trace_id()) if self.audit_max else None,
            audit_max=self.audit_max,
        )

    async def register_audit_tenant(self, tenant_id: str) -> None:
        """Tells the drainers about a tenant's stream, once per tenant and process."""
        if self.audit_max and tenant_id not in self._audited_tenants:
            await self.hot.add_audit_tenant(tenant_id)
            self._audited_tenants.add(tenant_id)

    async def _record_pure_denial(
        self, me: KeyRecord, call: CallRequest, decision: Decision
    ) -> None:
        if not self.audit_max:
            return
        await self.register_audit_tenant(me.tenant_id)
        fields = [
            "v",
            denial_verdict(decision.decision_id, self.clock.now_ms(), decision.reason),
            "q",
            audit_request(me, call, current_trace_id()),
        ]
        if not await self.hot.audit_only(me.tenant_id, self.audit_max, fields):
            raise AuditBacklogFull()

    async def _decide(self, chain: list[KeyRecord], call: CallRequest) -> Outcome:
        await self.register_audit_tenant(chain[0].tenant_id)
        return parse_outcome(await self.hot.authorize(self._plan(chain, call)))

    def _decision(self, me: KeyRecord, outcome: Outcome) -> Decision:
        allowed = outcome.kind == "allow"
        return Decision(
            allowed=allowed,
            reason="" if allowed else outcome.reason,
            message="allowed" if allowed else _deny_message(outcome),
            key_id=me.key_id,
            tenant_id=me.tenant_id,
            decision_id=outcome.decision_id,
            reservation_id=outcome.reservation_id,
            quotas=outcome.quotas,
            retry_after_ms=max(outcome.retry_after_ms, 0),
        )

    # ---- key lookups and permissions ----------------------------------------------------

    async def caller_chain(self, credential: Credential) -> list[KeyRecord]:
        """The chain of a key-holder credential; refuses keys that cannot act (revoked...)."""
        chain = await self.chain_for_secret(credential.token)
        me = None if chain is None else await self.registry.get(chain[0].key_id)
        if chain is None or me is None:
            raise Unauthenticated("the key credential names no key")
        fresh = [me, *(await self._pg_ancestors(me))]
        problem = chain_state(fresh, self.clock.now_ms())
        if problem:
            raise PermissionDenied(
                f"the calling key cannot act: {problem.lower().replace('_', ' ')}",
                metadata={"state": problem},
            )
        return fresh

    async def _pg_ancestors(self, record: KeyRecord) -> list[KeyRecord]:
        by_id = await self.registry.get_many(record.key_path[:-1])
        return [by_id[k] for k in reversed(record.key_path[:-1])]

    async def key_by_name(
        self, credential: Credential, name: str, *, allow_self: bool
    ) -> KeyRecord:
        """The named key if the caller may manage it: an admin, or an ancestor key holder."""
        parsed = parse_key_name(name)
        if parsed is None:
            raise NotFound(f"no key named {name!r}", reason="KEY_NOT_FOUND")
        tenant_id, key_id = parsed
        record = await self.registry.get(key_id)
        if record is None or record.tenant_id != tenant_id:
            raise NotFound(f"no key named {name!r}", reason="KEY_NOT_FOUND")
        if credential.kind == ADMIN:
            return record
        if credential.kind != KEY:
            raise PermissionDenied("service credentials cannot manage keys")
        caller = (await self.caller_chain(credential))[0]
        is_ancestor = caller.key_id in record.key_path[:-1]
        if not (is_ancestor or (allow_self and caller.key_id == record.key_id)):
            raise PermissionDenied(f"{caller.name} may not act on {name}")
        return record

    async def validate(self, secret: str) -> Validation:
        if not key_secrets.is_well_formed(secret):
            return Validation(False, "KEY_UNKNOWN", None)
        record = await self.registry.get_by_hash(self.hash_secret(secret))
        if record is None:
            return Validation(False, "KEY_UNKNOWN", None)
        problem = chain_state([record, *(await self._pg_ancestors(record))], self.clock.now_ms())
        return Validation(not problem, problem, record)

    # ---- state changes ------------------------------------------------------------------

    async def revoke(self, credential: Credential, name: str, reason: str) -> tuple[KeyRecord, int]:
        record = await self.key_by_name(credential, name, allow_self=True)
        revoked = await self.registry.revoke_subtree(
            record, credential.actor, reason, self.clock.now_ms()
        )
        if revoked:
            await self.hot.set_state(revoked, KeyState.REVOKED)
            log.info("revoked %s and %d descendants", record.name, len(revoked) - 1)
        current = await self.registry.get(record.key_id)
        assert current is not None
        return current, max(len(revoked) - 1, 0)

    async def set_frozen(
        self, credential: Credential, name: str, frozen: bool, reason: str
    ) -> KeyRecord:
        record = await self.key_by_name(credential, name, allow_self=False)
        wanted = KeyState.FROZEN if frozen else KeyState.ACTIVE
        if record.state is KeyState.REVOKED:
            raise FailedPrecondition(f"{name} is revoked", reason="KEY_STATE")
        if record.state is wanted:
            return record
        updated = await self.registry.set_state(record, wanted, credential.actor, reason)
        if updated is None:
            raise FailedPrecondition(f"{name} changed state meanwhile; retry", reason="KEY_STATE")
        await self.hot.set_state([updated], wanted)
        log.info("%s %s", "froze" if frozen else "unfroze", name)
        return updated


def _deny_message(outcome: Outcome) -> str:
    text = outcome.reason.lower().replace("_", " ")
    if outcome.quotas:
        q = outcome.quotas[0]
        text += f": {q.subject} {q.quota} used {q.used} of {q.limit} {q.unit}"
    return text


def new_decision_id() -> str:
    return "d_" + secrets.token_hex(12)


def current_trace_id() -> str:
    """The OpenTelemetry trace id of the current call (32 hex digits), or "" outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def request_digest(serialized: bytes) -> bytes:
    return hashlib.sha256(serialized).digest()
