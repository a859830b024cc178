"""Rebuilding a key's Redis counters from the billing events (Postgres is the source of truth).

Used whenever Redis does not have a key loaded (first use, FLUSHALL, restart): a flush must
never reset a cap, nor empty a rate window (rebuild_rates.py). Holds that were open when Redis
lost them are gone; the charges that settle them are still recorded in full.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from keyleash_core.keyrecord import KeyRecord
from keyleash_core.postgres import run_db
from keyleash_core.redis import keyspace
from keyleash_core.times import datetime_from_ms, ms_from_datetime
from keyleash_core.windows import BUCKET_MS, DAY_MS, RUN_TTL_MS, cap_check, window_start_ms
from vault_service.store.rebuild_rates import rate_counter

# An event counts in a cap's currency ($2) in its own amount, or converted (billing_events.
# converted, stamped by metering at the rate in force when it was recorded).
_IN_CAP_CURRENCY = """CASE WHEN currency_code = $2 THEN amount_micros
    ELSE (converted->$2->>'micros')::bigint END"""
_COUNTS_IN = "(currency_code = $2 OR converted ? $2)"
_SUM_SINCE = f"""SELECT COALESCE(SUM({_IN_CAP_CURRENCY}), 0) FROM billing_events
    WHERE key_path @> ARRAY[$1]::text[] AND {_COUNTS_IN} AND occur_time >= $3"""
_BUCKETS_SINCE = f"""SELECT (EXTRACT(EPOCH FROM occur_time) * 1000)::bigint / $4 AS bucket,
    SUM({_IN_CAP_CURRENCY}) AS micros FROM billing_events
    WHERE key_path @> ARRAY[$1]::text[] AND {_COUNTS_IN} AND occur_time >= $3
    GROUP BY 1"""
_RUNS_SINCE = f"""SELECT agent_run_id, SUM({_IN_CAP_CURRENCY}) AS micros FROM billing_events
    WHERE key_path @> ARRAY[$1]::text[] AND {_COUNTS_IN} AND occur_time >= $3
    GROUP BY agent_run_id"""
# Grants still in force: the window they were for has not reset (or never does).
_GRANTS = """SELECT approval_id, currency_code, quota, window_id, granted_micros, grant_end_time
    FROM approvals WHERE capped_key_id = $1 AND state = 'approved'
      AND (grant_end_time IS NULL OR grant_end_time > $2)
    ORDER BY currency_code, quota, window_id"""
_CALLS = """SELECT COUNT(*) FROM billing_events
    WHERE key_path @> ARRAY[$1]::text[] AND kind <> 'refund'"""


class _KeyList:
    """The KEYS of load_key.lua after KEYS[1] (the key hash itself), as counters name them."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, names: tuple[str, ...]) -> list[int]:
        indexes = []
        for name in names:
            self.names.append(name)
            indexes.append(len(self.names) + 1)  # KEYS[1] is the key hash itself
        return indexes


async def rebuild_counters(
    pool: asyncpg.Pool, record: KeyRecord, now_ms: int, audit_max_lag_ms: int | None = None
) -> tuple[list[dict[str, Any]], list[str], int, str]:
    """(counters, their Redis keys, lifetime calls) for load_key.lua, from billing_events, and
    the rate window from the audit table (rebuild_rates; `audit_max_lag_ms` None: audit off).

    Calls are rebuilt as the number of billing events of the subtree: a lower bound of the
    calls made, since an allowed call that was never charged leaves no event.
    """
    keys = _KeyList()
    async with pool.acquire() as con, con.transaction(isolation="repeatable_read", readonly=True):
        # One snapshot for every sum, remembered by the key: settle.lua skips events it saw.
        snapshot = str(await run_db(lambda: con.fetchval("SELECT pg_current_snapshot()::text")))
        counters = await _spend_counters(con, record, now_ms, keys)
        counters += await _run_counters(con, record, now_ms, keys)
        counters += await _grant_counters(con, record, now_ms, keys)
        rate_key = keyspace.rate(record.tenant_id, record.key_id)
        rates = await run_db(lambda: rate_counter(con, record, rate_key, now_ms, audit_max_lag_ms))
        if rates is not None:
            rates["k"] = keys.add((rate_key,))
            counters.append(rates)
        calls = 0
        if record.policy.max_calls:
            calls = int(await run_db(lambda: con.fetchval(_CALLS, record.key_id)))
    return counters, keys.names, calls, snapshot


async def _spend_counters(
    con: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    record: KeyRecord,
    now_ms: int,
    keys: _KeyList,
) -> list[dict[str, Any]]:
    """Each spend cap's window: per-minute buckets (rolling 24 h) or one counter."""
    counters: list[dict[str, Any]] = []
    for index, cap in enumerate(record.policy.spend_caps):
        check = cap_check(record, index, now_ms)
        since = datetime_from_ms(window_start_ms(cap.window, now_ms))
        args = (record.key_id, check.currency, since)
        if check.kind == "rolling":
            rows = await run_db(lambda a=args: con.fetch(_BUCKETS_SINCE, *a, BUCKET_MS))  # type: ignore[misc]
            buckets = [[str(r["bucket"]), str(int(r["micros"]))] for r in rows]
            counters.append(
                {"kind": "rolling", "k": keys.add(check.keys), "buckets": buckets,
                 "ttl": check.ttl_ms}
            )  # fmt: skip
        else:
            total = await run_db(lambda a=args: con.fetchval(_SUM_SINCE, *a))  # type: ignore[misc]
            counters.append(
                {"kind": "counter", "k": keys.add(check.keys), "value": str(int(total)),
                 "ttl": check.ttl_ms}
            )  # fmt: skip
    return counters


async def _run_counters(
    con: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    record: KeyRecord,
    now_ms: int,
    keys: _KeyList,
) -> list[dict[str, Any]]:
    """The run cap's counter of every run the key spent in within the run TTL."""
    run_cap = record.policy.run_spend_cap
    if run_cap is None:
        return []
    since = datetime_from_ms(now_ms - RUN_TTL_MS)
    rows = await run_db(lambda: con.fetch(_RUNS_SINCE, record.key_id, run_cap.currency, since))
    counters: list[dict[str, Any]] = []
    for row in rows:
        name = keyspace.run_spend(
            record.tenant_id, record.key_id, run_cap.currency, row["agent_run_id"]
        )
        counters.append(
            {"kind": "counter", "k": keys.add((name,)), "value": str(int(row["micros"])),
             "ttl": RUN_TTL_MS}
        )  # fmt: skip
    return counters


async def _grant_counters(
    con: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    record: KeyRecord,
    now_ms: int,
    keys: _KeyList,
) -> list[dict[str, Any]]:
    """The approval grants of the key that still raise a cap (approvals table)."""
    rows = await run_db(lambda: con.fetch(_GRANTS, record.key_id, datetime_from_ms(now_ms)))
    by_name: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = keyspace.spend_grant(
            record.tenant_id, record.key_id, row["currency_code"], row["quota"], row["window_id"]
        )
        end = row["grant_end_time"]
        # Kept a day past the reset, as the spend counters are; the window id retires it anyway.
        ttl = (ms_from_datetime(end) - now_ms + DAY_MS) if end is not None else 0
        if row["quota"] == "run":
            ttl = RUN_TTL_MS
        counter = by_name.setdefault(name, {"kind": "grant", "k": [], "fields": [], "ttl": ttl})
        counter["fields"].append([row["approval_id"], str(int(row["granted_micros"]))])
    for name, counter in by_name.items():
        counter["k"] = keys.add((name,))
    return list(by_name.values())
