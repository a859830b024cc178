"""Tenants' budgets in Postgres (the source of truth) and their hash in Redis (what Authorize
reads), rewritten from Postgres whenever an admin changes the budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from keyleash_core.money import Money
from keyleash_core.postgres import run_db
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import RedisClient, Scripts, run_redis
from keyleash_core.tenants import TENANT_STATE_SQL, load_tenant, throttled_until_ms
from keyleash_core.times import datetime_from_ms
from keyleash_core.windows import day_period

UPSERT_TENANT = """INSERT INTO tenants (tenant_id, daily_threshold_micros, daily_threshold_currency,
        throttle_lifted_at, update_time)
    VALUES ($1, $2, $3, CASE WHEN $4 THEN $5::timestamptz END, $5::timestamptz)
    ON CONFLICT (tenant_id) DO UPDATE SET
        daily_threshold_micros = EXCLUDED.daily_threshold_micros,
        daily_threshold_currency = EXCLUDED.daily_threshold_currency,
        throttle_lifted_at = CASE WHEN $4 THEN $5::timestamptz ELSE tenants.throttle_lifted_at END,
        update_time = $5::timestamptz"""


@dataclass(frozen=True)
class TenantView:
    """A tenant's budget as GetTenant shows it."""

    tenant_id: str
    threshold: Money | None
    spend_today: Money | None
    throttled_until_ms: int

    def throttled(self, now_ms: int) -> bool:
        return self.throttled_until_ms > now_ms


def view_from_hash(
    tenant_id: str, threshold: int, currency: str, spent: int, until: int
) -> TenantView:
    return TenantView(
        tenant_id=tenant_id,
        threshold=Money(currency, threshold) if threshold > 0 and currency else None,
        spend_today=Money(currency, spent) if currency else None,
        throttled_until_ms=until,
    )


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class TenantBudgets:
    """The tenants table and the tenant hash in Redis."""

    def __init__(self, pool: asyncpg.Pool, client: RedisClient, scripts: Scripts) -> None:
        self._pool = pool
        self._redis = client
        self._scripts = scripts

    async def set_budget(
        self, tenant_id: str, threshold: Money | None, lift: bool, now_ms: int
    ) -> None:
        """Upserts the tenant row, then rebuilds its Redis hash from Postgres."""
        await run_db(
            lambda: self._pool.execute(
                UPSERT_TENANT,
                tenant_id,
                threshold.micros if threshold else None,
                threshold.currency if threshold else None,
                lift,
                datetime_from_ms(now_ms),
            )
        )
        await self.reload(tenant_id, now_ms)

    async def reload(self, tenant_id: str, now_ms: int) -> None:
        """Drops the tenant hash and rebuilds it from Postgres (threshold, spend, throttle)."""
        await run_redis(lambda: self._redis.delete(keyspace.tenant(tenant_id)))
        await load_tenant(self._pool, self._scripts, tenant_id, now_ms)

    async def ensure_loaded(self, tenant_id: str, now_ms: int) -> None:
        await load_tenant(self._pool, self._scripts, tenant_id, now_ms)

    async def from_postgres(self, tenant_id: str, now_ms: int) -> TenantView:
        """The tenant's state computed from Postgres alone."""
        _day, start, _end = day_period(now_ms)
        day = datetime.fromtimestamp(start / 1000, tz=UTC).date()
        row = await run_db(lambda: self._pool.fetchrow(TENANT_STATE_SQL, tenant_id, day))
        if row is None or row["daily_threshold_micros"] is None:
            return TenantView(tenant_id, None, None, 0)
        threshold = int(row["daily_threshold_micros"])
        currency = row["daily_threshold_currency"] or ""
        spent = int(row["spent"])
        lifted = row["throttle_lifted_at"]
        lifted_ms = int(lifted.timestamp() * 1000) if lifted is not None else 0
        until = throttled_until_ms(threshold, spent, lifted_ms, now_ms)
        return view_from_hash(tenant_id, threshold, currency, spent, until)

    async def from_redis(self, tenant_id: str) -> TenantView | None:
        """The tenant's hash as Authorize sees it, or None when it is not loaded."""
        fields = await run_redis(
            lambda: self._redis.hmget(
                keyspace.tenant(tenant_id), "loaded", "threshold", "currency", "spent",
                "throttled_until",
            )
        )  # fmt: skip
        if fields[0] is None:
            return None
        return view_from_hash(
            tenant_id,
            int(fields[1] or 0),
            _text(fields[2]),
            int(fields[3] or 0),
            int(fields[4] or 0),
        )
