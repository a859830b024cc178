"""Postgres side of policy templates: the policy_templates table (a tenant's templates)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from keyleash_core.postgres import run_db
from keyleash_core.times import ms_from_datetime
from vault_service.domain.templates import Template


def template_name(tenant_id: str, template_id: str) -> str:
    return f"tenants/{tenant_id}/policyTemplates/{template_id}"


class TemplateStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(
        self,
        tenant_id: str,
        template_id: str,
        template: Template,
        *,
        created_by: str,
        request_id: str,
        request_digest: bytes,
    ) -> bool:
        """False when the tenant already has this template_id or the request_id was used."""
        inserted = await run_db(
            lambda: self._pool.fetchval(
                """INSERT INTO policy_templates (tenant_id, template_id, body, create_time,
                       created_by, request_id, request_digest)
                   VALUES ($1, $2, $3::jsonb, now(), $4, NULLIF($5, ''), $6)
                   ON CONFLICT DO NOTHING RETURNING true""",
                tenant_id,
                template_id,
                template.to_json(),
                created_by,
                request_id,
                request_digest or None,
            )
        )
        return bool(inserted)

    async def find_created(self, created_by: str, request_id: str) -> tuple[Template, bytes] | None:
        """What an earlier CreatePolicyTemplate with this request_id stored, and its digest."""
        row = await run_db(
            lambda: self._pool.fetchrow(
                """SELECT tenant_id, template_id, body::text AS body, create_time, request_digest
                   FROM policy_templates WHERE created_by = $1 AND request_id = $2""",
                created_by,
                request_id,
            )
        )
        if row is None:
            return None
        return _template(row), bytes(row["request_digest"] or b"")

    async def get(self, tenant_id: str, template_id: str) -> Template | None:
        row = await run_db(
            lambda: self._pool.fetchrow(
                """SELECT tenant_id, template_id, body::text AS body, create_time
                   FROM policy_templates WHERE tenant_id = $1 AND template_id = $2""",
                tenant_id,
                template_id,
            )
        )
        return None if row is None else _template(row)

    async def list(self, tenant_id: str, after_id: str, limit: int) -> Sequence[Template]:
        rows = await run_db(
            lambda: self._pool.fetch(
                """SELECT tenant_id, template_id, body::text AS body, create_time
                   FROM policy_templates WHERE tenant_id = $1 AND template_id > $2
                   ORDER BY template_id LIMIT $3""",
                tenant_id,
                after_id,
                limit,
            )
        )
        return [_template(r) for r in rows]

    async def delete(self, tenant_id: str, template_id: str) -> bool:
        deleted = await run_db(
            lambda: self._pool.fetchval(
                """DELETE FROM policy_templates WHERE tenant_id = $1 AND template_id = $2
                   RETURNING true""",
                tenant_id,
                template_id,
            )
        )
        return bool(deleted)


def _template(row: asyncpg.Record) -> Template:
    name = template_name(row["tenant_id"], row["template_id"])
    return Template.from_json(name, row["body"], ms_from_datetime(row["create_time"]))
