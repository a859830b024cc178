"""The billing stream in Postgres: group-committed inserts, spend totals, event listings.

Idempotency lives in billing_requests (request_id PK), written in the same transaction as the
events and the daily_spend roll-up, so daily_spend always equals the sum of its events.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from keyleash_core.errors import AlreadyExists, KeyleashError
from keyleash_core.money import Money
from keyleash_core.postgres import run_db, transaction
from keyleash_core.reasons import ErrorReason
from keyleash_core.times import datetime_from_us, us_from_datetime
from metering_service.domain.events import (
    BillingEvent,
    Kind,
    WriteResult,
    converted_from_json,
    converted_to_json,
)

EVENT_COLUMNS = """event_id, request_id, tenant_id, key_id, parent_key_id, key_path, agent_id,
    agent_run_id, trace_id, kind, currency_code, amount_micros, vendor, endpoint, model,
    input_tokens, output_tokens, cached_input_tokens, reason, cost_source, vendor_request_id,
    reservation_id, attributes, occur_time, record_time, converted"""

INSERT_REQUESTS = """INSERT INTO billing_requests (request_id, payload_digest, event_id, occur_time)
    SELECT * FROM unnest($1::text[], $2::bytea[], $3::uuid[], $4::timestamptz[])
    ON CONFLICT (request_id) DO NOTHING
    RETURNING request_id, now() AS record_time, pg_current_xact_id()::text AS xid"""

SELECT_RECORDED = f"""SELECT r.payload_digest, r.xid::text AS xid, {
    ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
}
    FROM billing_requests r
    JOIN billing_events e ON e.event_id = r.event_id AND e.occur_time = r.occur_time
    WHERE r.request_id = ANY($1::text[])"""

COPY_COLUMNS = [column.strip() for column in EVENT_COLUMNS.split(",")]

UPSERT_DAILY = """INSERT INTO daily_spend
    (tenant_id, day, currency_code, amount_micros, event_count)
    SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::bigint[], $5::bigint[])
    ON CONFLICT (tenant_id, day, currency_code) DO UPDATE
    SET amount_micros = daily_spend.amount_micros + EXCLUDED.amount_micros,
        event_count = daily_spend.event_count + EXCLUDED.event_count"""


def event_from_row(row: Any) -> BillingEvent:
    return BillingEvent(
        event_id=str(row["event_id"]),
        request_id=row["request_id"],
        tenant_id=row["tenant_id"],
        key_id=row["key_id"],
        parent_key_id=row["parent_key_id"],
        key_path=tuple(row["key_path"]),
        agent_id=row["agent_id"],
        agent_run_id=row["agent_run_id"],
        trace_id=row["trace_id"],
        kind=Kind(row["kind"]),
        amount=Money(row["currency_code"], int(row["amount_micros"])),
        vendor=row["vendor"],
        endpoint=row["endpoint"],
        model=row["model"],
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cached_input_tokens=int(row["cached_input_tokens"]),
        reason=row["reason"],
        cost_source=row["cost_source"],
        vendor_request_id=row["vendor_request_id"],
        reservation_id=row["reservation_id"],
        attributes=json.loads(row["attributes"]),
        occur_time_us=us_from_datetime(row["occur_time"]),
        record_time_us=us_from_datetime(row["record_time"]),
        commit_xid=row.get("xid") or "",
        converted=converted_from_json(row["converted"]),
    )


def _json(value: Mapping[str, Any]) -> str:
    # jsonb columns: orjson is ~10x the stdlib's speed, and most events have no attributes.
    if not value:
        return "{}"
    return orjson.dumps(dict(value), option=orjson.OPT_SORT_KEYS).decode()


def _event_args(e: BillingEvent, record_time: Any, occur_time: datetime) -> tuple[Any, ...]:
    # event_id goes as text: asyncpg encodes a uuid from its string (metering made it, valid)
    # at a fraction of a uuid.UUID's cost.
    return (
        e.event_id, e.request_id, e.tenant_id, e.key_id, e.parent_key_id,
        list(e.key_path), e.agent_id, e.agent_run_id, e.trace_id, e.kind.value,
        e.amount.currency, e.amount.micros, e.vendor, e.endpoint, e.model, e.input_tokens,
        e.output_tokens, e.cached_input_tokens, e.reason, e.cost_source, e.vendor_request_id,
        e.reservation_id, _json(e.attributes),
        occur_time, record_time, converted_to_json(e.converted),
    )  # fmt: skip


@dataclass(frozen=True)
class PendingWrite:
    """An event to record under its request's payload digest."""

    event: BillingEvent
    digest: bytes


Outcome = WriteResult | KeyleashError


def _reused(request_id: str) -> AlreadyExists:
    return AlreadyExists(
        f"request_id {request_id!r} was already used with a different payload",
        reason=ErrorReason.REQUEST_ID_REUSED,
        metadata={"request_id": request_id},
    )


def _daily_rows(
    events: Sequence[BillingEvent], occur_times: Mapping[int, datetime]
) -> list[list[Any]]:
    sums: dict[tuple[str, date, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        day = occur_times[e.occur_time_us].date()  # the UTC day: the times are in UTC
        total = sums[(e.tenant_id, day, e.amount.currency)]
        total[0] += e.amount.micros
        total[1] += 1
    ordered = sorted(sums.items())  # one lock order for every writer: no deadlocks
    return [
        [k[0] for k, _ in ordered],
        [k[1] for k, _ in ordered],
        [k[2] for k, _ in ordered],
        [v[0] for _, v in ordered],
        [v[1] for _, v in ordered],
    ]


async def _commit(
    con: Any, firsts: list[PendingWrite]
) -> tuple[dict[str, BillingEvent], dict[str, tuple[bytes, BillingEvent]]]:
    """Inside one transaction: new events by request_id, and those recorded before."""
    # Events of a batch often share their time (usage reported without one is "now").
    occur_times: dict[int, datetime] = {}
    for p in firsts:
        if p.event.occur_time_us not in occur_times:
            occur_times[p.event.occur_time_us] = datetime_from_us(p.event.occur_time_us)
    inserted = await con.fetch(
        INSERT_REQUESTS,
        [p.event.request_id for p in firsts],
        [p.digest for p in firsts],
        [p.event.event_id for p in firsts],
        [occur_times[p.event.occur_time_us] for p in firsts],
    )
    new: dict[str, BillingEvent] = {}
    if inserted:
        record_time = inserted[0]["record_time"]
        recorded_us, commit_xid = us_from_datetime(record_time), inserted[0]["xid"]
        fresh_ids = {row["request_id"] for row in inserted}
        for p in firsts:
            if p.event.request_id in fresh_ids:
                new[p.event.request_id] = p.event.recorded(recorded_us, commit_xid)
        # COPY: one round trip and no per-row statement for the whole group commit.
        await con.copy_records_to_table(
            "billing_events",
            records=[
                _event_args(e, record_time, occur_times[e.occur_time_us]) for e in new.values()
            ],
            columns=COPY_COLUMNS,
        )
        await con.execute(UPSERT_DAILY, *_daily_rows(list(new.values()), occur_times))
    old: dict[str, tuple[bytes, BillingEvent]] = {}
    missing = [p.event.request_id for p in firsts if p.event.request_id not in new]
    if missing:
        for row in await con.fetch(SELECT_RECORDED, missing):
            old[row["request_id"]] = (bytes(row["payload_digest"]), event_from_row(row))
    return new, old


def _request_id(write: PendingWrite) -> str:
    return write.event.request_id


async def commit_batch(pool: asyncpg.Pool, batch: Sequence[PendingWrite]) -> list[Outcome]:
    """Records a batch in ONE transaction; one outcome per item, in order.

    The first item for a request_id is the candidate; later ones in the batch, and those whose
    request_id was recorded before, are duplicates when the payload matches, else ALREADY_EXISTS.
    Driver failures raise (StoreUnavailable...) and fail the whole batch: nothing acknowledged.
    """
    firsts: dict[str, PendingWrite] = {}
    for p in batch:
        firsts.setdefault(p.event.request_id, p)
    # Request ids in one order for every writer: two transactions inserting the same ids (a
    # retry racing its first attempt) wait for each other instead of deadlocking.
    ordered = sorted(firsts.values(), key=_request_id)
    async with transaction(pool) as con:
        new, old = await _commit(con, ordered)
    outcomes: list[Outcome] = []
    for p in batch:
        rid = p.event.request_id
        if rid in new:
            mine = firsts[rid] is p
            if mine:
                outcomes.append(WriteResult(new[rid], duplicate=False))
            elif p.digest == firsts[rid].digest:
                outcomes.append(WriteResult(new[rid], duplicate=True))
            else:
                outcomes.append(_reused(rid))
        elif rid in old and old[rid][0] == p.digest:
            outcomes.append(WriteResult(old[rid][1], duplicate=True))
        else:
            outcomes.append(_reused(rid))
    return outcomes


# ---- reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Which events: every non-empty field must match. Times in microseconds, end exclusive."""

    tenant_id: str = ""
    key_id: str = ""
    subtree_of: str = ""  # a key and all its descendants
    agent_id: str = ""
    agent_run_id: str = ""
    start_us: int | None = None
    end_us: int | None = None


def where_clause(f: EventFilter, args: list[Any]) -> str:
    """SQL conditions for `f`, appending their parameters to `args`."""
    conditions = ["TRUE"]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        conditions.append(sql.replace("?", f"${len(args)}"))

    if f.tenant_id:
        add("tenant_id = ?", f.tenant_id)
    if f.key_id:
        add("key_id = ?", f.key_id)
    if f.subtree_of:
        add("key_path @> ARRAY[?::text]", f.subtree_of)
    if f.agent_id:
        add("agent_id = ?", f.agent_id)
    if f.agent_run_id:
        add("agent_run_id = ?", f.agent_run_id)
    if f.start_us is not None:
        add("occur_time >= ?", datetime_from_us(f.start_us))
    if f.end_us is not None:
        add("occur_time < ?", datetime_from_us(f.end_us))
    return " AND ".join(conditions)


async def spend_totals(pool: asyncpg.Pool, f: EventFilter) -> tuple[list[Money], int]:
    """(one total per currency sorted by code, number of events) of the matching events."""
    args: list[Any] = []
    sql = f"""SELECT currency_code, SUM(amount_micros) AS micros, COUNT(*) AS n
        FROM billing_events WHERE {where_clause(f, args)}
        GROUP BY currency_code ORDER BY currency_code"""
    rows = await run_db(lambda: pool.fetch(sql, *args))
    return [Money(r["currency_code"], int(r["micros"])) for r in rows], sum(
        int(r["n"]) for r in rows
    )


async def list_events(
    pool: asyncpg.Pool,
    f: EventFilter,
    after: tuple[int, str] | None,
    limit: int,
    newest_first: bool = False,
) -> list[BillingEvent]:
    """Up to `limit` matching events beyond the keyset position (occur_time, event_id), oldest
    or newest first."""
    args: list[Any] = []
    where = where_clause(f, args)
    beyond, direction = ("<", "DESC") if newest_first else (">", "ASC")
    if after is not None:
        args.extend([datetime_from_us(after[0]), uuid.UUID(after[1])])
        where += f" AND (occur_time, event_id) {beyond} (${len(args) - 1}, ${len(args)})"
    args.append(limit)
    sql = f"""SELECT {EVENT_COLUMNS} FROM billing_events WHERE {where}
        ORDER BY occur_time {direction}, event_id {direction} LIMIT ${len(args)}"""
    rows = await run_db(lambda: pool.fetch(sql, *args))
    return [event_from_row(r) for r in rows]


async def export_events(
    pool: asyncpg.Pool, f: EventFilter, prefetch: int = 1000
) -> AsyncIterator[BillingEvent]:
    """Every matching event, oldest first, through a server-side cursor (constant memory)."""
    args: list[Any] = []
    sql = f"""SELECT {EVENT_COLUMNS} FROM billing_events WHERE {where_clause(f, args)}
        ORDER BY occur_time, event_id"""
    async with transaction(pool) as con:
        async for row in con.cursor(sql, *args, prefetch=prefetch):
            yield event_from_row(row)
