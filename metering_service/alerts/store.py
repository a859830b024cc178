"""Postgres adapters of the alerts: subscriptions, the facts already announced, the outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from keyleash_core.postgres import run_db, transaction
from metering_service.alerts.domain import Fact

SUBSCRIPTION_COLUMNS = """subscription_id, tenant_id, url, sealed_secret, event_types, format,
    create_time, request_digest"""
INSERT_SUBSCRIPTION = f"""INSERT INTO alert_subscriptions
    (subscription_id, tenant_id, url, sealed_secret, event_types, format, request_id,
     request_digest)
    VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8)
    ON CONFLICT (tenant_id, request_id) DO NOTHING
    RETURNING {SUBSCRIPTION_COLUMNS}"""
SUBSCRIPTION_BY_REQUEST = f"""SELECT {SUBSCRIPTION_COLUMNS} FROM alert_subscriptions
    WHERE tenant_id = $1 AND request_id = $2"""
LIST_SUBSCRIPTIONS = f"""SELECT {SUBSCRIPTION_COLUMNS} FROM alert_subscriptions
    WHERE tenant_id = $1 ORDER BY create_time, subscription_id"""
DELETE_SUBSCRIPTION = f"""DELETE FROM alert_subscriptions
    WHERE tenant_id = $1 AND subscription_id = $2 RETURNING {SUBSCRIPTION_COLUMNS}"""
SUBSCRIBED_TENANTS = "SELECT DISTINCT tenant_id FROM alert_subscriptions"
SUBSCRIBERS = """SELECT subscription_id FROM alert_subscriptions
    WHERE tenant_id = $1 AND $2 = ANY (event_types)"""
INSERT_FACT = """INSERT INTO alert_facts (tenant_id, fact_key, event_id) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING RETURNING 1"""
INSERT_DELIVERIES = """INSERT INTO alert_deliveries
    (tenant_id, subscription_id, event_id, event_type, payload)
    SELECT $1, s, $2, $3, $4::jsonb FROM unnest($5::text[]) AS s
    ON CONFLICT (subscription_id, event_id) DO NOTHING"""
DELIVERY_COLUMNS = """d.delivery_id, d.tenant_id, d.subscription_id, d.event_id, d.event_type,
    d.payload::text AS payload, d.state, d.attempts, d.last_status, d.last_error, d.create_time,
    d.deliver_time"""
LIST_DELIVERIES = f"""SELECT {DELIVERY_COLUMNS} FROM alert_deliveries d
    WHERE d.tenant_id = $1 AND ($2 = '' OR d.subscription_id = $2) AND ($3 = '' OR d.state = $3)
      AND d.delivery_id > $4
    ORDER BY d.delivery_id LIMIT $5"""
# Claims due deliveries by pushing their next attempt one lease ahead: a dispatcher that dies
# mid-delivery leaves the row to be retried when the lease ends; SKIP LOCKED lets several
# dispatchers claim disjoint rows.
CLAIM_DUE = f"""WITH due AS (
        SELECT delivery_id FROM alert_deliveries
        WHERE state = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
    UPDATE alert_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
    FROM due, alert_subscriptions s
    WHERE d.delivery_id = due.delivery_id AND s.subscription_id = d.subscription_id
    RETURNING {DELIVERY_COLUMNS}, s.url, s.sealed_secret, s.format"""
MARK_DELIVERED = """UPDATE alert_deliveries SET state = 'delivered', deliver_time = now(),
    last_status = $2, last_error = '' WHERE delivery_id = $1 AND state = 'pending'"""
MARK_FAILED = """UPDATE alert_deliveries
    SET state = CASE WHEN $5 THEN 'dead' ELSE 'pending' END, last_status = $2, last_error = $3,
        next_attempt_at = now() + make_interval(secs => $4)
    WHERE delivery_id = $1 AND state = 'pending'"""


@dataclass(frozen=True)
class SubscriptionRow:
    subscription_id: str
    tenant_id: str
    url: str
    sealed_secret: bytes
    event_types: tuple[str, ...]
    format: str
    create_time: datetime
    request_digest: bytes | None

    @property
    def name(self) -> str:
        return f"tenants/{self.tenant_id}/alertSubscriptions/{self.subscription_id}"

    @classmethod
    def of(cls, row: asyncpg.Record) -> SubscriptionRow:
        values = dict(row)
        values["event_types"] = tuple(values["event_types"])
        return cls(**values)


@dataclass(frozen=True)
class DeliveryRow:
    delivery_id: int
    tenant_id: str
    subscription_id: str
    event_id: str
    event_type: str
    payload: str
    state: str
    attempts: int
    last_status: int
    last_error: str
    create_time: datetime
    deliver_time: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> DeliveryRow:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ClaimedDelivery:
    """A due delivery and where and how to send it."""

    delivery: DeliveryRow
    url: str
    sealed_secret: bytes
    format: str


class AlertStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, values: Sequence[Any]) -> SubscriptionRow | None:
        """The row inserted, or None when its (tenant, request_id) already exists."""
        row = await run_db(lambda: self.pool.fetchrow(INSERT_SUBSCRIPTION, *values))
        return None if row is None else SubscriptionRow.of(row)

    async def by_request(self, tenant_id: str, request_id: str) -> SubscriptionRow | None:
        row = await run_db(
            lambda: self.pool.fetchrow(SUBSCRIPTION_BY_REQUEST, tenant_id, request_id)
        )
        return None if row is None else SubscriptionRow.of(row)

    async def list_for(self, tenant_id: str) -> list[SubscriptionRow]:
        rows = await run_db(lambda: self.pool.fetch(LIST_SUBSCRIPTIONS, tenant_id))
        return [SubscriptionRow.of(r) for r in rows]

    async def delete(self, tenant_id: str, subscription_id: str) -> SubscriptionRow | None:
        row = await run_db(
            lambda: self.pool.fetchrow(DELETE_SUBSCRIPTION, tenant_id, subscription_id)
        )
        return None if row is None else SubscriptionRow.of(row)

    async def deliveries(
        self, tenant_id: str, subscription_id: str, state: str, after: int, limit: int
    ) -> list[DeliveryRow]:
        rows = await run_db(
            lambda: self.pool.fetch(
                LIST_DELIVERIES, tenant_id, subscription_id, state, after, limit
            )
        )
        return [DeliveryRow.of(r) for r in rows]

    async def subscribed_tenants(self) -> list[str]:
        rows = await run_db(lambda: self.pool.fetch(SUBSCRIBED_TENANTS))
        return [r["tenant_id"] for r in rows]

    async def announce(self, fact: Fact, payload: dict[str, Any]) -> bool:
        """Records the fact and its outbox rows in one transaction; False if already known."""
        async with transaction(self.pool) as con:
            if (
                await con.fetchval(INSERT_FACT, fact.tenant_id, fact.fact_key, fact.event_id)
                is None
            ):
                return False
            subscribers = await con.fetch(SUBSCRIBERS, fact.tenant_id, fact.event_type)
            ids = [r["subscription_id"] for r in subscribers]
            if ids:
                body = json.dumps(payload, separators=(",", ":"))
                await con.execute(
                    INSERT_DELIVERIES, fact.tenant_id, fact.event_id, fact.event_type, body, ids
                )
            return True

    async def claim_due(self, limit: int, lease_seconds: float) -> list[ClaimedDelivery]:
        rows = await run_db(lambda: self.pool.fetch(CLAIM_DUE, limit, lease_seconds))
        return [
            ClaimedDelivery(DeliveryRow.of(r), r["url"], r["sealed_secret"], r["format"])
            for r in rows
        ]

    async def mark_delivered(self, delivery_id: int, status: int) -> None:
        await run_db(lambda: self.pool.execute(MARK_DELIVERED, delivery_id, status))

    async def mark_failed(
        self, delivery_id: int, status: int, error: str, retry_in_seconds: float, dead: bool
    ) -> None:
        await run_db(
            lambda: self.pool.execute(
                MARK_FAILED, delivery_id, status, error[:500], retry_in_seconds, dead
            )
        )
