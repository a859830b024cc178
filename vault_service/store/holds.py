"""Candidates for a key's open holds: allowed decisions with a reservation that no billing event
settled yet, from the audit table (Redis has no per-key index of holds; the caller confirms
each candidate against the reservation hash)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keyleash_core.postgres import run_db

_UNSETTLED = """
SELECT key_id, reservation_id, decision_id, decision_time, agent_run_id, estimated_micros,
       currency_code
FROM authorization_ledger
WHERE tenant_id = $1 AND key_id = ANY($2::text[]) AND decision = 'allow'
  AND reservation_id <> '' AND settled_events = 0 AND decision_time >= $3
ORDER BY decision_time DESC
LIMIT $4
"""


@dataclass(frozen=True)
class HoldRow:
    key_id: str
    reservation_id: str
    decision_id: str
    decision_time: datetime
    agent_run_id: str
    micros: int
    currency: str


async def unsettled_holds(
    pool: asyncpg.Pool, tenant_id: str, key_ids: list[str], since: datetime, limit: int
) -> list[HoldRow]:
    """Allowed decisions of the keys since `since` whose hold no billing event settled, newest
    first."""
    rows = await run_db(lambda: pool.fetch(_UNSETTLED, tenant_id, key_ids, since, limit))
    return [
        HoldRow(
            key_id=r["key_id"],
            reservation_id=r["reservation_id"],
            decision_id=r["decision_id"],
            decision_time=r["decision_time"],
            agent_run_id=r["agent_run_id"],
            micros=r["estimated_micros"],
            currency=r["currency_code"],
        )
        for r in rows
    ]
