"""Postgres side of approvals: the approvals table (requests, decisions, durable grants), the
used-link table, and the key_events rows that put every step in the key's history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from keyleash_core.postgres import run_db, transaction
from keyleash_core.times import datetime_from_ms, ms_from_datetime
from vault_service.domain.approvals import Approval, ApprovalState

_COLUMNS = """approval_id, tenant_id, key_id, capped_key_id, quota, currency_code, window_id,
    agent_run_id, amount_micros, reason, state, granted_micros, create_time, expire_time,
    decide_time, decided_by, decision_reason, grant_end_time, requested_by"""
_INSERT = f"""INSERT INTO approvals ({_COLUMNS}) VALUES
    ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', NULL, $11, $12, NULL, '', '', $13, $14)
    ON CONFLICT (key_id, capped_key_id, quota, currency_code, window_id)
        WHERE state = 'pending' DO NOTHING
    RETURNING {_COLUMNS}"""
_PENDING = f"""SELECT {_COLUMNS} FROM approvals WHERE key_id = $1 AND capped_key_id = $2
    AND quota = $3 AND currency_code = $4 AND window_id = $5 AND state = 'pending'"""
_DENIED = f"""SELECT {_COLUMNS} FROM approvals WHERE key_id = $1 AND capped_key_id = $2
    AND quota = $3 AND currency_code = $4 AND window_id = $5 AND state = 'denied'
    ORDER BY decide_time DESC LIMIT 1"""
_GET = f"SELECT {_COLUMNS} FROM approvals WHERE approval_id = $1"
_DECIDE = f"""UPDATE approvals SET state = $2, granted_micros = $3, decide_time = $4,
    decided_by = $5, decision_reason = $6 WHERE approval_id = $1 AND state = 'pending'
    RETURNING {_COLUMNS}"""
_LIST = f"""SELECT {_COLUMNS} FROM approvals a WHERE tenant_id = $1
    AND ($2 = '' OR state = $2)
    AND ($3 = '' OR EXISTS (SELECT 1 FROM keys k WHERE k.key_id = a.key_id
                            AND k.key_path @> ARRAY[$3]::text[]))
    AND ($4::timestamptz IS NULL OR (create_time, approval_id) < ($4, $5))
    ORDER BY create_time DESC, approval_id DESC LIMIT $6"""
_DUE = f"""SELECT {_COLUMNS} FROM approvals WHERE state = 'pending' AND expire_time <= $1
    ORDER BY expire_time LIMIT $2"""
_USE_LINK = """INSERT INTO approval_links_used (link_sha256, approval_id) VALUES ($1, $2)
    ON CONFLICT DO NOTHING"""
_EVENT = """INSERT INTO key_events (key_id, tenant_id, action, actor, reason, event_time, details)
    VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)"""


@dataclass(frozen=True)
class Decided:
    """A decision to record: the new state, who, when, why, and what was granted."""

    state: ApprovalState
    actor: str
    now_ms: int
    reason: str
    granted_micros: int | None = None
    link_digest: bytes | None = None


class LinkUsed(Exception):
    """The signed link was used before."""


class ApprovalStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open(
        self, approval: Approval, *, after_denial: bool = False
    ) -> tuple[Approval, bool]:
        """Inserts a pending request, or returns the one already pending for the same key, cap
        and window (False). `after_denial`: a request denied for that window is returned
        instead of asking again (a budget denial does not re-ask what a human refused). The
        key's history records the opening."""
        a = approval
        tuple_args = (a.key_id, a.capped_key_id, a.quota, a.currency, a.window_id)
        async with transaction(self._pool) as con:
            if after_denial:
                refused = await con.fetchrow(_DENIED, *tuple_args)
                if refused is not None:
                    return approval_from_row(refused), False
            row = await con.fetchrow(
                _INSERT, a.approval_id, a.tenant_id, a.key_id, a.capped_key_id, a.quota,
                a.currency, a.window_id, a.agent_run_id, a.amount_micros, a.reason,
                datetime_from_ms(a.create_ms), datetime_from_ms(a.expire_ms),
                _time(a.grant_end_ms), a.requested_by,
            )  # fmt: skip
            if row is None:
                existing = await con.fetchrow(_PENDING, *tuple_args)
                if existing is not None:
                    return approval_from_row(existing), False
                raise asyncpg.exceptions.SerializationError("the pending request just closed")
            opened = approval_from_row(row)
            await _event(con, opened, "approval_requested", a.requested_by, a.reason, a.create_ms)
        return opened, True

    async def get(self, approval_id: str) -> Approval | None:
        row = await run_db(lambda: self._pool.fetchrow(_GET, approval_id))
        return approval_from_row(row) if row is not None else None

    async def decide(self, approval_id: str, decided: Decided) -> Approval | None:
        """Moves a pending request to `decided.state` (None when it is no longer pending), with
        its key_events row, and the link marked used, in one transaction. LinkUsed: replayed."""
        d = decided
        async with transaction(self._pool) as con:
            row = await con.fetchrow(
                _DECIDE, approval_id, d.state.value, d.granted_micros,
                datetime_from_ms(d.now_ms), d.actor, d.reason,
            )  # fmt: skip
            if row is None:
                return None
            if d.link_digest is not None:
                used = await con.execute(_USE_LINK, d.link_digest, approval_id)
                if used.endswith(" 0"):
                    raise LinkUsed()
            approval = approval_from_row(row)
            await _event(con, approval, f"approval_{d.state.value}", d.actor, d.reason, d.now_ms)
        return approval

    async def due(self, now_ms: int, limit: int) -> list[Approval]:
        """Pending requests whose expiry has passed, oldest expiry first."""
        rows = await run_db(lambda: self._pool.fetch(_DUE, datetime_from_ms(now_ms), limit))
        return [approval_from_row(r) for r in rows]

    async def link_used(self, digest: bytes) -> bool:
        found = await run_db(
            lambda: self._pool.fetchval(
                "SELECT 1 FROM approval_links_used WHERE link_sha256 = $1", digest
            )
        )
        return found is not None

    async def list(
        self,
        tenant_id: str,
        state: str,
        within_key_id: str,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[Approval]:
        """Newest first; `within_key_id`: only requests of that key's subtree ("" = all)."""
        since = datetime_from_ms(after[0]) if after else None
        last_id = after[1] if after else ""
        rows = await run_db(
            lambda: self._pool.fetch(_LIST, tenant_id, state, within_key_id, since, last_id, limit)
        )
        return [approval_from_row(r) for r in rows]


async def _event(
    con: Any, approval: Approval, action: str, actor: str, reason: str, now_ms: int
) -> None:
    """The step in the requesting key's history (ListKeyEvents), with what it was about."""
    details = {
        "approval": approval.name,
        "capped_key_id": approval.capped_key_id,
        "quota": approval.quota,
        "window_id": approval.window_id,
        "amount": [approval.currency, approval.amount_micros],
        "granted": [approval.currency, approval.granted_micros],
        "state": approval.state.value,
        "expire_ms": approval.expire_ms,
    }
    await con.execute(
        _EVENT, approval.key_id, approval.tenant_id, action, actor, reason,
        datetime_from_ms(now_ms), json.dumps(details),
    )  # fmt: skip


def _time(ms: int | None) -> datetime | None:
    return datetime_from_ms(ms) if ms is not None else None


def _ms(value: datetime | None) -> int | None:
    return ms_from_datetime(value) if value is not None else None


def approval_from_row(row: Any) -> Approval:
    return Approval(
        approval_id=row["approval_id"],
        tenant_id=row["tenant_id"],
        key_id=row["key_id"],
        capped_key_id=row["capped_key_id"],
        quota=row["quota"],
        currency=row["currency_code"],
        window_id=row["window_id"],
        agent_run_id=row["agent_run_id"],
        amount_micros=int(row["amount_micros"]),
        reason=row["reason"],
        state=ApprovalState(row["state"]),
        granted_micros=row["granted_micros"],
        create_ms=ms_from_datetime(row["create_time"]),
        expire_ms=ms_from_datetime(row["expire_time"]),
        decide_ms=_ms(row["decide_time"]),
        decided_by=row["decided_by"],
        decision_reason=row["decision_reason"],
        grant_end_ms=_ms(row["grant_end_time"]),
        requested_by=row["requested_by"],
    )
