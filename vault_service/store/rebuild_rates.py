"""Rebuilding a key's rate window (its sorted set of admitted calls) after Redis lost it.

Two parts:
- every ALLOW of the key's subtree within its longest window that the audit table holds;
- placeholders, scored at the rebuild time, for ALLOWs the audit table may not hold yet: their
  entries were still in the Redis stream that was lost. authorize.lua decides nothing while a
  tenant's oldest undrained entry is older than the lag bound, so the forgotten ALLOWs all lie
  within one span of `lag` ms; the key's own limits bound how many fit in such a span, and that
  many placeholders stand in for them. With the audit off nothing bounds them: the window is
  treated as full.

A placeholder counts in every window for one longest window after the rebuild, so the price of
a Redis loss is that the key admits up to that many fewer calls during that window (never more
than its limits), as docs/RELIABILITY.md says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from keyleash_core.keyrecord import KeyRecord
from keyleash_core.policy import RateLimit

_ALLOWS_SINCE = """SELECT decision_id, (EXTRACT(EPOCH FROM decision_time) * 1000)::bigint AS ms
    FROM authorizations
    WHERE key_path @> ARRAY[$1]::text[] AND decision = 'allow' AND decision_time > $2"""


def forgotten_bound(limits: tuple[RateLimit, ...] | list[RateLimit], lag_ms: int | None) -> int:
    """At most how many ALLOWs of a key a Redis loss can have forgotten (audit not drained)."""
    largest = max(r.limit for r in limits)
    if lag_ms is None:
        return largest
    # A span of lag ms is covered by ceil(lag / window) + 1 windows of each limit.
    return min(largest, *(r.limit * (-(-lag_ms // r.window_ms) + 1) for r in limits))


async def rate_counter(
    con: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    record: KeyRecord,
    rate_key: str,
    now_ms: int,
    lag_ms: int | None,
) -> dict[str, Any] | None:
    """The load_key.lua counter that rebuilds `rate_key`, or None for a key without rates."""
    limits = record.policy.rate_limits
    if not limits:
        return None
    longest = max(r.window_ms for r in limits)
    since = datetime.fromtimestamp((now_ms - longest) / 1000, tz=UTC)
    rows = await con.fetch(_ALLOWS_SINCE, record.key_id, since)
    members = [[str(int(r["ms"])), r["decision_id"]] for r in rows]
    members += [[str(now_ms), f"lost:{now_ms}:{n}"] for n in range(forgotten_bound(limits, lag_ms))]
    return {"kind": "rate", "members": members, "ttl": longest}
