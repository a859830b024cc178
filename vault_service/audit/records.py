"""An audit stream entry as a row of the authorizations table. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from vault_service.domain.decision import AUDIT_REQUEST_FIELDS, AUDIT_VERDICT_FIELDS

COLUMNS = (
    "decision_id", "decision_time", "tenant_id", "key_id", "key_path", "parent_key_id",
    "agent_id", "agent_run_id", "trace_id", "scope", "vendor", "method", "path",
    "estimated_micros", "currency_code", "decision", "deny_reason", "quota_subject", "quota",
    "quota_limit", "quota_used", "quota_remaining", "reservation_id", "request_id",
)  # fmt: skip

_DECISIONS = {"A": "allow", "D": "deny"}


def _text(fields: dict[str, str], name: str) -> str:
    return fields.get(name, "")


def _int(fields: dict[str, str], name: str) -> int:
    raw = fields.get(name, "") or "0"
    return int(raw)


def entry_fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    """An entry's fields by name: its "v" and "q" arrays (AUDIT_*_FIELDS), or, for an entry
    written before those existed, one stream field per name."""
    verdict, request = raw.get(b"v"), raw.get(b"q")
    if verdict is not None and request is not None:
        fields = dict(zip(AUDIT_VERDICT_FIELDS, json.loads(verdict), strict=True))
        fields.update(zip(AUDIT_REQUEST_FIELDS, json.loads(request), strict=True))
        return fields
    return {k.decode(): v.decode() for k, v in raw.items()}


def entry_to_row(raw: dict[bytes, bytes]) -> tuple[Any, ...]:
    """The authorizations row for one stream entry (as authorize.lua writes them)."""
    fields = entry_fields(raw)
    key_path = [part for part in _text(fields, "key_path").split(",") if part]
    return (
        fields["decision_id"],
        datetime.fromtimestamp(_int(fields, "time_ms") / 1000, tz=UTC),
        _text(fields, "tenant_id"),
        _text(fields, "key_id"),
        key_path,
        _text(fields, "parent_key_id"),
        _text(fields, "agent_id"),
        _text(fields, "agent_run_id"),
        _text(fields, "trace_id"),
        _text(fields, "scope"),
        _text(fields, "vendor"),
        _text(fields, "method"),
        _text(fields, "path"),
        _int(fields, "estimated_micros"),
        _text(fields, "currency"),
        _DECISIONS.get(_text(fields, "decision"), "deny"),
        _text(fields, "reason"),
        _text(fields, "quota_subject"),
        _text(fields, "quota"),
        _int(fields, "quota_limit"),
        _int(fields, "quota_used"),
        _int(fields, "quota_remaining"),
        _text(fields, "reservation_id"),
        _text(fields, "request_id"),
    )
