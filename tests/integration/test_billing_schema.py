"""The billing stream's schema guarantees, straight in Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest


async def test_billing_events_are_append_only_and_partitioned(system: Any) -> None:
    con = await asyncpg.connect(system.stores.database_url)
    try:
        event_id = uuid.uuid4()
        await con.execute(
            """INSERT INTO billing_events (event_id, request_id, tenant_id, key_id, key_path, kind,
                   currency_code, amount_micros, occur_time)
               VALUES ($1, $2, 't-schema', 'k', ARRAY['k'], 'charge', 'USD', 1, $3)""",
            event_id, uuid.uuid4().hex, datetime.now(tz=UTC),
        )  # fmt: skip
        for statement in (
            "UPDATE billing_events SET amount_micros = 2 WHERE event_id = $1",
            "DELETE FROM billing_events WHERE event_id = $1",
        ):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="append-only"):
                await con.execute(statement, event_id)
        partitions = await con.fetch(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'billing_events'::regclass"""
        )
        names = {r["relname"] for r in partitions}
        this_month = datetime.now(tz=UTC).strftime("billing_events_%Y_%m")
        assert this_month in names and "billing_events_default" in names
        assert len(names) >= 5  # this month and at least three ahead, plus DEFAULT
        landed = await con.fetchval(
            "SELECT tableoid::regclass::text FROM billing_events WHERE event_id = $1", event_id
        )
        assert landed == this_month
    finally:
        await con.close()
