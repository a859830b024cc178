"""A tenant's budget state in Redis (the throttle flag Authorize honours), rebuilt from Postgres
whenever Redis has lost it. Shared by both services."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from keyleash_core.errors import StoreUnavailable
from keyleash_core.postgres import run_db
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import Scripts, run_redis
from keyleash_core.windows import day_period

TENANT_STATE_SQL = """
SELECT t.daily_threshold_micros, t.daily_threshold_currency, t.throttle_lifted_at,
       COALESCE((SELECT d.amount_micros FROM daily_spend d
                 WHERE d.tenant_id = t.tenant_id AND d.day = $2
                   AND d.currency_code = t.daily_threshold_currency), 0) AS spent
FROM tenants t WHERE t.tenant_id = $1
"""


def throttled_until_ms(threshold: int, spent: int, lifted_at_ms: int, now_ms: int) -> int:
    """End of today's UTC day when the threshold is crossed and not lifted today, else 0."""
    _day, start, end = day_period(now_ms)
    if threshold <= 0 or spent < threshold or lifted_at_ms >= start:
        return 0
    return end


LOAD_ATTEMPTS = 8


async def load_tenant(pool: asyncpg.Pool, scripts: Scripts, tenant_id: str, now_ms: int) -> None:
    """Rebuilds the tenant hash from Postgres (threshold, today's spend, throttle).

    Retried when a charge settled while Postgres was being read (load_tenant.lua answers -1):
    the snapshot might not hold it, and a load must never forget spend.
    """
    name = keyspace.tenant(tenant_id)
    for _attempt in range(LOAD_ATTEMPTS):
        gen = await run_redis(lambda: scripts.client.hget(name, "gen"))
        args, snapshot = await _tenant_state(pool, tenant_id, now_ms)
        loaded = await scripts.run("load_tenant", [name], [*args, _text(gen), snapshot])
        if int(loaded) >= 0:
            return
    raise StoreUnavailable("redis", "the tenant kept changing while it was being loaded")


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return "0"
    return raw.decode() if isinstance(raw, bytes) else raw


async def _tenant_state(pool: asyncpg.Pool, tenant_id: str, now_ms: int) -> tuple[list[str], str]:
    """The load_tenant.lua arguments, and the Postgres snapshot they were read in: settle.lua
    does not count an event that snapshot already saw in today's spend (it would count twice
    after Redis lost the tenant and a retried Charge settles again)."""
    day_id, start, _end = day_period(now_ms)
    day = datetime.fromtimestamp(start / 1000, tz=UTC).date()

    async def read() -> tuple[asyncpg.Record | None, str]:
        async with pool.acquire() as con, con.transaction(isolation="repeatable_read"):
            snapshot = str(await con.fetchval("SELECT pg_current_snapshot()::text"))
            return await con.fetchrow(TENANT_STATE_SQL, tenant_id, day), snapshot

    row, snapshot = await run_db(read)
    threshold, currency, spent, lifted_ms = 0, "", 0, 0
    if row is not None and row["daily_threshold_micros"] is not None:
        threshold = int(row["daily_threshold_micros"])
        currency = row["daily_threshold_currency"] or ""
        spent = int(row["spent"])
        if row["throttle_lifted_at"] is not None:
            lifted_ms = int(row["throttle_lifted_at"].timestamp() * 1000)
    until = throttled_until_ms(threshold, spent, lifted_ms, now_ms)
    return [str(threshold), currency, str(spent), day_id, str(until)], snapshot
