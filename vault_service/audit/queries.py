"""Reading the audit: the authorization_ledger view, filtered and paged by (time, decision id),
oldest or newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from keyleash_core.postgres import run_db

_LIST = """
SELECT * FROM authorization_ledger
WHERE tenant_id = $1
  AND ($2 = '' OR key_path @> ARRAY[$2]::text[])
  AND ($3 = '' OR agent_run_id = $3)
  AND ($4 = '' OR decision = $4)
  AND ($5 = '' OR deny_reason = $5)
  AND ($6::timestamptz IS NULL OR decision_time >= $6)
  AND ($7::timestamptz IS NULL OR decision_time < $7)
  AND ($8::timestamptz IS NULL OR (decision_time, decision_id) {after} ($8, $9))
ORDER BY decision_time {direction}, decision_id {direction}
LIMIT $10
"""
# Keyset paging both ways: the position is the last row shown, the next page lies beyond it.
_OLDEST_FIRST = _LIST.format(after=">", direction="ASC")
_NEWEST_FIRST = _LIST.format(after="<", direction="DESC")


@dataclass(frozen=True)
class AuthorizationFilter:
    tenant_id: str
    within_key_id: str = ""
    agent_run_id: str = ""
    decision: str = ""  # "allow", "deny" or ""
    deny_reason: str = ""
    start: datetime | None = None
    end: datetime | None = None
    newest_first: bool = False


async def list_authorizations(
    pool: asyncpg.Pool,
    spec: AuthorizationFilter,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Any]:
    return list(
        await run_db(
            lambda: pool.fetch(
                _NEWEST_FIRST if spec.newest_first else _OLDEST_FIRST,
                spec.tenant_id,
                spec.within_key_id,
                spec.agent_run_id,
                spec.decision,
                spec.deny_reason,
                spec.start,
                spec.end,
                after[0] if after else None,
                after[1] if after else "",
                limit,
            )
        )
    )
