"""Audit stream entries, as the drainer hands them to Postgres. Pure.

An entry holds two JSON arrays (vault_service.domain.decision.AUDIT_*_FIELDS): "v", the verdict
the deciding script wrote, and "q", the request's part. The drainer passes both to Postgres
as they are, and insert_entries.sql makes the authorizations row from them, so parsing runs on
Postgres's CPU, not in the vault's event loop.
"""

from __future__ import annotations

import json
from importlib import resources

from vault_service.domain.decision import AUDIT_REQUEST_FIELDS, AUDIT_VERDICT_FIELDS

INSERT_ENTRIES = (
    resources.files("vault_service.audit").joinpath("insert_entries.sql").read_text("utf-8")
)


def entry_parts(raw: dict[bytes, bytes]) -> tuple[str, str]:
    """(verdict JSON, request JSON) of one stream entry.

    An entry written before the two-array format (one stream field per column) is converted,
    so that a stream filled by an older vault still drains.
    """
    verdict, request = raw.get(b"v"), raw.get(b"q")
    if verdict is not None and request is not None:
        return verdict.decode(), request.decode()
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return (
        json.dumps([fields.get(name, "") for name in AUDIT_VERDICT_FIELDS]),
        json.dumps([fields.get(name, "") for name in AUDIT_REQUEST_FIELDS]),
    )
