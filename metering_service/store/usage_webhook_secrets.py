"""Postgres adapter of the usage webhook signing secrets (one sealed secret per tenant)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from keyleash_core.postgres import run_db

COLUMNS = "tenant_id, sealed_secret, create_time, rotate_time"
INSERT = f"""INSERT INTO usage_webhook_secrets (tenant_id, sealed_secret) VALUES ($1, $2)
    ON CONFLICT (tenant_id) DO NOTHING RETURNING {COLUMNS}"""
ROTATE = f"""UPDATE usage_webhook_secrets SET sealed_secret = $2, rotate_time = now()
    WHERE tenant_id = $1 RETURNING {COLUMNS}"""
BY_TENANT = f"SELECT {COLUMNS} FROM usage_webhook_secrets WHERE tenant_id = $1"


@dataclass(frozen=True)
class SecretRow:
    tenant_id: str
    sealed_secret: bytes
    create_time: datetime
    rotate_time: datetime


def _row(record: asyncpg.Record | None) -> SecretRow | None:
    if record is None:
        return None
    return SecretRow(
        record["tenant_id"], bytes(record["sealed_secret"]), record["create_time"],
        record["rotate_time"],
    )  # fmt: skip


class UsageWebhookSecretStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, tenant_id: str, sealed: bytes) -> SecretRow | None:
        """The new row, or None when the tenant already has a secret."""
        return _row(await run_db(lambda: self.pool.fetchrow(INSERT, tenant_id, sealed)))

    async def rotate(self, tenant_id: str, sealed: bytes) -> SecretRow | None:
        """The updated row, or None when the tenant has no secret."""
        return _row(await run_db(lambda: self.pool.fetchrow(ROTATE, tenant_id, sealed)))

    async def get(self, tenant_id: str) -> SecretRow | None:
        return _row(await run_db(lambda: self.pool.fetchrow(BY_TENANT, tenant_id)))
