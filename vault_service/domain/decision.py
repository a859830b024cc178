"""The atomic part of a decision: the plan handed to authorize.lua, and reading its answer.

Python decides *what* to check (the chain's rate limits, call counts and spend windows, by the
cached policies); the script checks and consumes it atomically. The script refuses a plan built
from an outdated policy (policy_version), so a cache can never loosen a limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

import orjson

from keyleash_core.caches import LruCache
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.reasons import DenyReason
from keyleash_core.redis import keyspace
from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.windows import SLOT_MS, SpendCheck, spend_checks
from vault_service.domain.checks import CallRequest

MEMO_TTL_MS = 24 * 3600 * 1000
# A hold outlives every window it can count in; an unsettled one simply expires with them.
RESERVATION_TTL_MS = 33 * 24 * 3600 * 1000


# Quota, Outcome (and the use case's Decision) are named tuples, not frozen dataclasses: a
# batched decision builds one Outcome and one Quota per window, and a frozen dataclass costs
# ~2.3 µs to build against ~0.6 µs for a named tuple (AuthorizeBatch profile, eleventh session).
class Quota(NamedTuple):
    """A window's standing, as the script reported it."""

    subject: str
    quota: str
    unit: str
    limit: int
    used: int
    remaining: int
    reset_ms: int


class OutcomeKind(Enum):
    """What the decision script answered."""

    ALLOW = "A"
    DENY = "D"
    MISSING = "M"  # a key (or the tenant) is not in Redis: load it, decide again
    STALE = "S"  # a policy changed since the plan was built: re-read the chain, decide again
    FULL = "F"  # the audit stream is at its bound: no decision (fail closed)
    REUSED = "R"  # the request_id was first used for another call: ALREADY_EXISTS


class Outcome(NamedTuple):
    """What the script answered, parsed."""

    kind: OutcomeKind
    reason: DenyReason | None = None
    decision_id: str = ""
    reservation_id: str = ""
    quotas: Sequence[Quota] = ()
    retry_after_ms: int = 0
    chain_index: int = -1  # for missing/stale: 0 = the tenant, i = chain[i-1]
    decided_at_ms: int = 0  # the script's "now" (Redis TIME unless a test clock is injected)
    connections_version: str = ""  # on ALLOW: the tenant's connections version, "" if unknown


@dataclass(frozen=True)
class ChainPart:
    """What a plan holds of the chain, whatever the call: the Redis keys after the four
    per-call ones, and the chain's links and spend checks, encoded once."""

    keys: tuple[str, ...]
    links: orjson.Fragment
    spends: orjson.Fragment
    currencies: frozenset[str]  # of the spend checks: every one needs this call's hold


class ChainPlans:
    """Chain parts by (chain, policy versions, run, second): under load every call of a key in
    the same second reuses one, instead of building its spend checks again (10 µs per key of
    the chain). At most `max_entries` (least recently used dropped)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._parts: LruCache[tuple[Any, ...], ChainPart] = LruCache(max_entries)

    def __len__(self) -> int:
        return len(self._parts)

    def part(self, chain: Sequence[KeyRecord], agent_run_id: str, now_ms: int) -> ChainPart:
        slot = now_ms // SLOT_MS
        identity = (slot, agent_run_id, chain[0].tenant_id, *_versions(chain))
        found = self._parts.get(identity)
        if found is None:
            found = chain_part(chain, agent_run_id, slot * SLOT_MS)
            self._parts.put(identity, found)
        return found


def _versions(chain: Sequence[KeyRecord]) -> list[tuple[str, int]]:
    return [(r.key_id, r.policy_version) for r in chain]


def chain_part(chain: Sequence[KeyRecord], agent_run_id: str, slot_ms: int) -> ChainPart:
    """The chain's part of the plan for any call in the second starting at `slot_ms`."""
    tenant_id = chain[0].tenant_id
    keys = [
        *(keyspace.key(tenant_id, r.key_id) for r in chain),
        *(keyspace.rate(tenant_id, r.key_id) for r in chain),
    ]
    checks, spends = [], []
    for link, record in enumerate(chain, start=1):
        of_record = spend_checks([record], agent_run_id, slot_ms)
        spends += _spend_entries(of_record, link, keys, offset=len(PER_CALL_KEYS))
        checks += of_record
    keys.append(keyspace.connections_version(tenant_id))  # last: the script reads KEYS[#KEYS]
    return ChainPart(
        keys=tuple(keys),
        links=orjson.Fragment(orjson.dumps([_link(r) for r in chain])),
        spends=orjson.Fragment(orjson.dumps(spends)),
        currencies=frozenset(c.currency for c in checks),
    )


# KEYS[1..4] of authorize.lua, made per call: tenant, memo, reservation, audit stream.
PER_CALL_KEYS = ("tenant", "memo", "reservation", "audit")


def build_plan(
    chain: Sequence[KeyRecord],
    call: CallRequest,
    *,
    now_ms: int,
    decision_id: str,
    reservation_id: str,
    audit: str | None = None,
    audit_max: int = 0,
    audit_max_lag_ms: int = 30_000,
    redis_clock: bool = False,
    converted: Mapping[str, int] | None = None,
    plans: ChainPlans | None = None,
) -> ScriptCall:
    """The KEYS and ARGV of authorize.lua for `call` by chain[0] (its ancestors follow).

    `audit` is the request's part of the audit record (`audit_request`), None when off.
    `redis_clock`: the script decides on Redis's TIME (production); otherwise on `now_ms`
    (an injected test clock). `now_ms` always places the spend windows (buckets, periods).
    `plans`: where the chain's part comes from when it was built already this second.
    """
    me = chain[0]
    tenant_id = me.tenant_id
    if plans is not None:
        part = plans.part(chain, call.agent_run_id, now_ms)
    else:
        part = chain_part(chain, call.agent_run_id, now_ms // SLOT_MS * SLOT_MS)
    keys = [
        keyspace.tenant(tenant_id),
        keyspace.authorize_memo(tenant_id, me.key_id, call.request_id or "-"),
        keyspace.reservation(tenant_id, reservation_id),
        keyspace.audit_stream(tenant_id),
        *part.keys,
    ]
    cost = call.estimated_cost
    holds = dict(converted or {})
    if cost is not None:
        holds[cost.currency] = cost.micros
    if cost is None or cost.micros <= 0:
        holds = {}
    elif not part.currencies <= holds.keys():
        # A cap in a currency the call has no hold in is a bug upstream (check_call denies
        # it): fail rather than hold nothing.
        raise KeyError(f"no hold in {sorted(part.currencies - holds.keys())}")
    plan: dict[str, Any] = {
        "did": decision_id,
        "memo": 1 if call.request_id else 0,
        "rd": call_digest(call) if call.request_id else "",
        "memo_ttl": MEMO_TTL_MS,
        "res_id": reservation_id,
        "res_ttl": RESERVATION_TTL_MS,
        "cost": cost.micros if cost is not None and cost.micros > 0 else 0,
        "cur": cost.currency if cost is not None else "",
        "key_id": me.key_id,
        "tenant_subject": f"tenants/{tenant_id}",
        "chain": part.links,
        "spends": part.spends,
        "h": holds,  # this call's hold per currency; a spend check holds h[its currency]
    }
    if audit is not None:
        plan["audit"] = audit
        plan["audit_max"] = audit_max
        plan["audit_lag"] = audit_max_lag_ms
    return ScriptCall(keys=keys, args=["" if redis_clock else str(now_ms), orjson.dumps(plan)])


# Links and spend checks travel as arrays whose fields authorize.lua names LINK_* and SPEND_*
# in this order: decoding arrays costs Redis a quarter less than objects, and a depth-8 plan
# decodes 36 windows on every call.
LINK_FIELDS = ("pv", "name", "rates", "max_window", "calls")
SPEND_FIELDS = (
    "kind", "keys", "grant", "limit", "cur", "link", "quota", "run", "reset", "ttl", "bucket",
    "first",
)  # fmt: skip


def _link(record: KeyRecord) -> list[Any]:
    """What the script checks of one key of the chain besides its spend windows."""
    rates = record.policy.rate_limits
    return [
        record.policy_version,
        record.name,
        [[x.limit, x.window_ms, x.quota_name] for x in rates],
        max((x.window_ms for x in rates), default=0),  # how long the rate set must live
        record.policy.max_calls,
    ]


def _spend_entries(
    checks: Sequence[SpendCheck], link: int, keys: list[str], *, offset: int
) -> list[list[Any]]:
    """The script's spend checks of chain[link - 1]; appends the Redis keys each one reads to
    `keys`, which will follow `offset` other keys in KEYS."""
    spends = []
    for check in checks:
        indexes = []
        for name in check.keys:
            keys.append(name)
            indexes.append(offset + len(keys))  # Lua's KEYS are 1-based
        keys.append(check.grant_key)
        spends.append(
            [
                check.kind,
                indexes,
                offset + len(keys),  # the approval grant raising this cap in this window
                check.limit_micros,
                check.currency,
                link,  # the quota's subject is this link's name
                check.quota,
                1 if check.is_run else 0,
                check.reset_ms,
                check.ttl_ms,
                check.bucket,
                check.first_bucket,
            ]
        )
    return spends


def call_digest(call: CallRequest) -> str:
    """What a request_id stands for: a retry must describe the same call (hex SHA-256)."""
    cost = call.estimated_cost
    payload = [
        call.scope, call.vendor, call.method, call.path, call.agent_run_id,
        [cost.currency, cost.micros] if cost is not None else None,
        sorted(call.attributes.items()),
    ]  # fmt: skip
    return hashlib.sha256(orjson.dumps(payload)).hexdigest()


_OUTCOME_KINDS = {kind.value: kind for kind in OutcomeKind}  # a lookup, not an Enum call


def parse_outcome(raw: bytes | str) -> Outcome:
    data = orjson.loads(raw)
    kind = _OUTCOME_KINDS.get(data["r"])
    if kind is None:
        raise ValueError(f"unknown outcome {data['r']!r}")
    if kind is OutcomeKind.ALLOW or kind is OutcomeKind.DENY:
        quotas = data.get("quotas")
        reason = data.get("reason")
        return Outcome(
            kind=kind,
            reason=DenyReason(reason) if reason else None,
            decision_id=data.get("did", ""),
            reservation_id=data.get("res_id", ""),
            quotas=[
                Quota(q[0], q[1], q[2], int(q[3]), int(q[4]), int(q[5]), int(q[6])) for q in quotas
            ]
            if isinstance(quotas, list)  # cjson encodes an empty table as {}
            else [],
            retry_after_ms=int(data.get("retry_ms", "0")),
            decided_at_ms=int(data.get("t", "0")),
            connections_version=data.get("cv", ""),
        )
    if kind is OutcomeKind.MISSING or kind is OutcomeKind.STALE:
        return Outcome(kind, chain_index=int(data["idx"]))
    return Outcome(kind)


# An audit stream entry has two fields, each a JSON array in a fixed order: "q", the request's
# part (built here), and "v", the verdict (built by the deciding script). Two fields instead of
# one per column: the script appends less, and the drainer parses two strings per record.
AUDIT_REQUEST_FIELDS = (
    "tenant_id", "key_id", "key_path", "parent_key_id", "agent_id", "agent_run_id", "trace_id",
    "scope", "vendor", "method", "path", "estimated_micros", "currency", "request_id",
    "attributes",
)  # fmt: skip
AUDIT_VERDICT_FIELDS = (
    "decision_id", "time_ms", "decision", "reason", "quota_subject", "quota", "quota_limit",
    "quota_used", "quota_remaining", "reservation_id",
)  # fmt: skip


def audit_request(me: KeyRecord, call: CallRequest, trace_id: str) -> str:
    """The request's part of a decision's audit record (AUDIT_REQUEST_FIELDS, JSON)."""
    cost = call.estimated_cost
    return orjson.dumps(
        [
            me.tenant_id, me.key_id, ",".join(me.key_path), me.parent_key_id, me.agent_id,
            call.agent_run_id, trace_id, call.scope, call.vendor, call.method, call.path,
            str(cost.micros) if cost else "0", cost.currency if cost else "", call.request_id,
            dict(call.attributes),
        ]
    ).decode()  # fmt: skip


def denial_verdict(decision_id: str, now_ms: int, reason: DenyReason) -> str:
    """The verdict part (AUDIT_VERDICT_FIELDS, JSON) of a denial made without the script."""
    return orjson.dumps([decision_id, str(now_ms), "D", reason, "", "", "0", "0", "0", ""]).decode()
