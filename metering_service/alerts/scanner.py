"""Derives alert facts from committed rows and puts them in the outbox.

State-based rather than cursor-based: every pass recomputes, for whatever changed within the
lag window (rows recorded in the last `lag` seconds), where each spend window stands, and offers
every fact to `alert_facts`, whose primary key keeps the first. A row that commits late (group
commit, a slow transaction) is still inside the window on a later pass, so nothing is skipped,
and a fact seen twice or by two scanners is announced once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg

from keyleash_core.clock import Clock
from keyleash_core.policy import Policy, SpendWindow
from keyleash_core.postgres import transaction
from keyleash_core.times import ms_from_datetime
from keyleash_core.windows import day_period, window_start_ms
from metering_service.alerts import domain
from metering_service.alerts.domain import Fact
from metering_service.alerts.store import SUBSCRIBED_TENANTS, AlertStore

log = logging.getLogger("keyleash.alerts")

RECENT_KEYS = """SELECT k.key_id, k.policy FROM keys k WHERE k.tenant_id = $1 AND k.key_id IN (
    SELECT DISTINCT unnest(key_path) FROM billing_events
    WHERE tenant_id = $1 AND record_time > now() - make_interval(secs => $2))"""
KNOWN_FACTS = """SELECT fact_key FROM alert_facts
    WHERE tenant_id = $1 AND fact_key = ANY ($2::text[])"""
# An event counts in a cap's currency ($3) in its own amount or its stamped conversion.
_IN_CAP_CURRENCY = """CASE WHEN currency_code = $3 THEN amount_micros
    ELSE (converted->$3->>'micros')::bigint END"""
_COUNTS_IN = "(currency_code = $3 OR converted ? $3)"
KEY_SPEND = f"""SELECT COALESCE(SUM({_IN_CAP_CURRENCY}), 0)::bigint FROM billing_events
    WHERE tenant_id = $1 AND key_path @> ARRAY[$2] AND {_COUNTS_IN} AND occur_time >= $4"""
RUN_SPEND = f"""SELECT agent_run_id, SUM({_IN_CAP_CURRENCY})::bigint AS spent FROM billing_events
    WHERE tenant_id = $1 AND key_path @> ARRAY[$2] AND {_COUNTS_IN}
      AND agent_run_id IN (SELECT DISTINCT agent_run_id FROM billing_events
          WHERE tenant_id = $1 AND agent_run_id <> ''
            AND record_time > now() - make_interval(secs => $4))
    GROUP BY agent_run_id"""
TENANT_DAY = """SELECT t.daily_threshold_micros AS limit_micros,
        t.daily_threshold_currency AS currency, t.throttle_lifted_at,
        COALESCE(d.amount_micros, 0) AS spent
    FROM tenants t LEFT JOIN daily_spend d ON d.tenant_id = t.tenant_id AND d.day = $2
        AND d.currency_code = t.daily_threshold_currency
    WHERE t.tenant_id = $1"""
KEY_EVENTS = """SELECT event_id, key_id, action, actor, reason, event_time, details::text AS details
    FROM key_events
    WHERE tenant_id = $1 AND event_time > now() - make_interval(secs => $2)"""
DENIAL_BURSTS = """SELECT key_id, count(*) AS denials FROM authorizations
    WHERE tenant_id = $1 AND decision = 'deny' AND decision_time > $2
    GROUP BY key_id HAVING count(*) >= $3"""


def _crossings(
    tenant_id: str,
    event_type: str,
    subject: str,
    spent: int,
    limit: int,
    now_ms: int,
    data: dict[str, Any],
) -> Iterator[Fact]:
    for percent in domain.crossed_percents(spent, limit):
        yield Fact(
            tenant_id,
            f"{event_type}:{subject}:{percent}",
            event_type,
            {**data, "percent": percent, "spent_micros": spent, "limit_micros": limit},
            now_ms,
        )


def _window_id(window: SpendWindow, now_ms: int) -> str:
    """Names the window a crossing belongs to; a rolling window counts once per UTC day."""
    if window is SpendWindow.LIFETIME:
        return "life"
    if window is SpendWindow.CALENDAR_MONTH:
        return datetime.fromtimestamp(now_ms / 1000, UTC).strftime("m%Y%m")
    return day_period(now_ms)[0]


class Scanner:
    """One pass per subscribed tenant: spend crossings, throttles, key events, denial bursts."""

    def __init__(self, store: AlertStore, clock: Clock, lag_seconds: float) -> None:
        self.store = store
        self.pool: asyncpg.Pool = store.pool
        self.clock = clock
        self.lag_seconds = lag_seconds

    async def scan(self) -> int:
        """Announces what is new; returns how many facts were new."""
        announced = 0
        for fact in await self.facts(self.clock.now_ms()):
            payload = domain.standard_payload(fact, _iso(fact.occur_ms))
            announced += await self.store.announce(fact, payload)
        return announced

    async def facts(self, now_ms: int) -> list[Fact]:
        """Every fact of every subscribed tenant, read in one transaction: one consistent
        snapshot, and one commit per pass however many tenants there are."""
        found: list[Fact] = []
        async with transaction(self.pool) as con:
            await con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for row in await con.fetch(SUBSCRIBED_TENANTS):
                facts = await self.tenant_facts(con, row["tenant_id"], now_ms)
                # Facts already announced are dropped here, so a quiet pass writes nothing.
                known = await con.fetch(KNOWN_FACTS, row["tenant_id"], [f.fact_key for f in facts])
                seen = {r["fact_key"] for r in known}
                found += [f for f in facts if f.fact_key not in seen]
        return found

    async def tenant_facts(self, con: Any, tenant_id: str, now_ms: int) -> list[Fact]:
        found = await self._key_and_run_spend(con, tenant_id, now_ms)
        found += await self._tenant_day(con, tenant_id, now_ms)
        found += await self._key_events(con, tenant_id)
        found += await self._bursts(con, tenant_id, now_ms)
        return found

    async def _key_and_run_spend(self, con: Any, tenant_id: str, now_ms: int) -> list[Fact]:
        keys = await con.fetch(RECENT_KEYS, tenant_id, self.lag_seconds)
        found: list[Fact] = []
        for row in keys:
            key_id, policy = row["key_id"], Policy.from_json(row["policy"])
            for cap in policy.spend_caps:
                found += await self._cap_facts(
                    con, tenant_id, key_id, cap.window, cap.limit, now_ms
                )
            if policy.run_spend_cap is not None:
                found += await self._run_facts(con, tenant_id, key_id, policy.run_spend_cap, now_ms)
        return found

    async def _cap_facts(
        self, con: Any, tenant_id: str, key_id: str, window: SpendWindow, limit: Any, now_ms: int
    ) -> list[Fact]:
        start = datetime.fromtimestamp(window_start_ms(window, now_ms) / 1000, UTC)
        spent = await con.fetchval(KEY_SPEND, tenant_id, key_id, limit.currency, start)
        subject = f"{key_id}:{window.value}:{_window_id(window, now_ms)}"
        data = {"key_id": key_id, "window": window.value, "currency_code": limit.currency}
        return list(
            _crossings(tenant_id, "key.spend_crossed", subject, spent, limit.micros, now_ms, data)
        )

    async def _run_facts(
        self, con: Any, tenant_id: str, key_id: str, cap: Any, now_ms: int
    ) -> list[Fact]:
        rows = await con.fetch(RUN_SPEND, tenant_id, key_id, cap.currency, self.lag_seconds)
        found: list[Fact] = []
        for row in rows:
            run_id = row["agent_run_id"]
            data = {
                "key_id": key_id,
                "agent_run_id": run_id,
                "window": "run",
                "currency_code": cap.currency,
            }
            found += _crossings(
                tenant_id,
                "run.spend_crossed",
                f"{key_id}:{run_id}",
                row["spent"],
                cap.micros,
                now_ms,
                data,
            )
        return found

    async def _tenant_day(self, con: Any, tenant_id: str, now_ms: int) -> list[Fact]:
        day, day_start, _end = day_period(now_ms)
        day_date = datetime.fromtimestamp(day_start / 1000, UTC).date()
        row = await con.fetchrow(TENANT_DAY, tenant_id, day_date)
        if row is None or not row["limit_micros"]:
            return []
        data = {"window": "calendar_day", "currency_code": row["currency"]}
        spent, limit = row["spent"], row["limit_micros"]
        found = list(_crossings(tenant_id, "tenant.spend_crossed", day, spent, limit, now_ms, data))
        lifted = row["throttle_lifted_at"]
        lifted_today = lifted is not None and ms_from_datetime(lifted) >= day_start
        if spent >= limit and not lifted_today:
            # Once per threshold and day: a throttle again under a new threshold set after a
            # lift (which ends the lift) is announced again.
            throttled = {**data, "percent": 100, "spent_micros": spent, "limit_micros": limit}
            fact_id = f"throttled:{day}:{limit}{row['currency']}"
            found.append(Fact(tenant_id, fact_id, "tenant.throttled", throttled, now_ms))
        if lifted is not None and lifted_today:
            lifted_ms = ms_from_datetime(lifted)
            found.append(
                Fact(
                    tenant_id,
                    f"lifted:{lifted_ms}",
                    "tenant.throttle_lifted",
                    {"lift_time": _iso(lifted_ms)},
                    lifted_ms,
                )
            )
        return found

    async def _key_events(self, con: Any, tenant_id: str) -> list[Fact]:
        rows = await con.fetch(KEY_EVENTS, tenant_id, self.lag_seconds)
        found: list[Fact] = []
        for row in rows:
            event_type = domain.KEY_ACTIONS.get(row["action"])
            if event_type is None:
                continue
            occur_ms = ms_from_datetime(row["event_time"])
            data = {
                "key_id": row["key_id"],
                "action": row["action"],
                "actor": row["actor"],
                "reason": row["reason"],
                "event_time": _iso(occur_ms),
            }
            if event_type.startswith("approval."):
                data |= _approval_data(row["details"])
            found.append(
                Fact(tenant_id, f"key_event:{row['event_id']}", event_type, data, occur_ms)
            )
        return found

    async def _bursts(self, con: Any, tenant_id: str, now_ms: int) -> list[Fact]:
        since = datetime.fromtimestamp((now_ms - domain.BURST_WINDOW_MS) / 1000, UTC)
        rows = await con.fetch(DENIAL_BURSTS, tenant_id, since, domain.BURST_DENIALS)
        minute = now_ms // domain.BURST_WINDOW_MS
        return [
            Fact(
                tenant_id,
                f"burst:{r['key_id']}:{minute}",
                "key.denial_burst",
                {"key_id": r["key_id"], "denials": r["denials"]},
                now_ms,
            )
            for r in rows
        ]


def _approval_data(details: str) -> dict[str, Any]:
    """What an approval step's key_events details say, flat (money as micros and a code)."""
    raw = json.loads(details or "{}")
    currency, amount = raw.get("amount") or ["", 0]
    granted = (raw.get("granted") or ["", None])[1]
    return {
        "approval": raw.get("approval", ""),
        "capped_key_id": raw.get("capped_key_id", ""),
        "quota": raw.get("quota", ""),
        "window_id": raw.get("window_id", ""),
        "currency_code": currency,
        "amount_micros": amount,
        "granted_micros": granted,
        "state": raw.get("state", ""),
        "expire_ms": raw.get("expire_ms", 0),
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
