"""Postgres side of vendor connections: the connections table (secrets only ever sealed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keyleash_core.postgres import run_db, transaction


@dataclass(frozen=True)
class ConnectionRow:
    """One stored connection. `sealed_secret` is the envelope blob, never a clear secret."""

    tenant_id: str
    connection_id: str
    vendor: str
    base_url: str
    create_time: datetime
    rotate_time: datetime | None
    sealed_secret: bytes | None

    @property
    def name(self) -> str:
        return connection_name(self.tenant_id, self.connection_id)


def connection_name(tenant_id: str, connection_id: str) -> str:
    return f"tenants/{tenant_id}/connections/{connection_id}"


_COLUMNS = "tenant_id, connection_id, vendor, base_url, create_time, rotate_time, sealed_secret"
_LIVE = "delete_time IS NULL"


def _row(row: asyncpg.Record | None) -> ConnectionRow | None:
    if row is None:
        return None
    sealed = row["sealed_secret"]
    return ConnectionRow(
        tenant_id=row["tenant_id"],
        connection_id=row["connection_id"],
        vendor=row["vendor"],
        base_url=row["base_url"],
        create_time=row["create_time"],
        rotate_time=row["rotate_time"],
        sealed_secret=None if sealed is None else bytes(sealed),
    )


class ConnectionStore:
    """The connections table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(
        self, row: ConnectionRow, *, created_by: str, request_id: str, request_digest: bytes
    ) -> str:
        """ "inserted", "replay" (the same (created_by, request_id) exists) or "taken" (the
        connection_id is used in the tenant, live or deleted)."""
        async with transaction(self._pool) as con:
            if request_id and await con.fetchval(
                "SELECT 1 FROM connections WHERE created_by = $1 AND create_request_id = $2",
                created_by,
                request_id,
            ):
                return "replay"
            inserted = await con.fetchval(
                """INSERT INTO connections (tenant_id, connection_id, vendor, base_url,
                       sealed_secret, create_time, created_by, create_request_id,
                       create_request_digest)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), $9)
                   ON CONFLICT DO NOTHING RETURNING true""",
                row.tenant_id, row.connection_id, row.vendor, row.base_url, row.sealed_secret,
                row.create_time, created_by, request_id, request_digest,
            )  # fmt: skip
            return "inserted" if inserted else "taken"

    async def find_create(
        self, created_by: str, request_id: str
    ) -> tuple[ConnectionRow, bytes] | None:
        """The connection a CreateConnection with this request_id made, and its request digest."""
        row = await run_db(
            lambda: self._pool.fetchrow(
                f"SELECT {_COLUMNS}, create_request_digest FROM connections"
                " WHERE created_by = $1 AND create_request_id = $2",
                created_by,
                request_id,
            )
        )
        found = _row(row)
        if row is None or found is None:
            return None
        return found, bytes(row["create_request_digest"] or b"")

    async def get(self, tenant_id: str, connection_id: str) -> ConnectionRow | None:
        """The live connection, or None (also when deleted)."""
        return _row(
            await run_db(
                lambda: self._pool.fetchrow(
                    f"SELECT {_COLUMNS} FROM connections"
                    f" WHERE tenant_id = $1 AND connection_id = $2 AND {_LIVE}",
                    tenant_id,
                    connection_id,
                )
            )
        )

    async def oldest_for_vendor(self, tenant_id: str, vendor: str) -> ConnectionRow | None:
        return _row(
            await run_db(
                lambda: self._pool.fetchrow(
                    f"SELECT {_COLUMNS} FROM connections"
                    f" WHERE tenant_id = $1 AND vendor = $2 AND {_LIVE}"
                    " ORDER BY create_time, connection_id LIMIT 1",
                    tenant_id,
                    vendor,
                )
            )
        )

    async def list(
        self, tenant_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[ConnectionRow]:
        """Live connections of a tenant, oldest first, after the (create_time, id) cursor."""
        start_time, start_id = after if after else (None, "")
        rows = await run_db(
            lambda: self._pool.fetch(
                f"SELECT {_COLUMNS} FROM connections WHERE tenant_id = $1 AND {_LIVE}"
                " AND ($2::timestamptz IS NULL OR (create_time, connection_id) > ($2, $3))"
                " ORDER BY create_time, connection_id LIMIT $4",
                tenant_id,
                start_time,
                start_id,
                limit,
            )
        )
        return [r for r in (_row(row) for row in rows) if r is not None]

    async def rotate(
        self, tenant_id: str, connection_id: str, sealed: bytes, now: datetime
    ) -> ConnectionRow | None:
        return _row(
            await run_db(
                lambda: self._pool.fetchrow(
                    "UPDATE connections SET sealed_secret = $3, rotate_time = $4"
                    f" WHERE tenant_id = $1 AND connection_id = $2 AND {_LIVE}"
                    f" RETURNING {_COLUMNS}",
                    tenant_id,
                    connection_id,
                    sealed,
                    now,
                )
            )
        )

    async def delete(
        self, tenant_id: str, connection_id: str, now: datetime
    ) -> ConnectionRow | None:
        """Erases the sealed secret and tombstones the row; None when there was no live one."""
        return _row(
            await run_db(
                lambda: self._pool.fetchrow(
                    "UPDATE connections SET sealed_secret = NULL, delete_time = $3"
                    f" WHERE tenant_id = $1 AND connection_id = $2 AND {_LIVE}"
                    f" RETURNING {_COLUMNS}",
                    tenant_id,
                    connection_id,
                    now,
                )
            )
        )
