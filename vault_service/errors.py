"""Errors only the vault raises (the shared ones are in keyleash_core.errors)."""

from __future__ import annotations

from keyleash_core.errors import KeyleashError
from keyleash_core.reasons import ErrorReason


class AuditBacklogFull(KeyleashError):
    """The audit stream is at its bound: a decision that cannot be recorded is not made."""

    status = "UNAVAILABLE"
    default_reason = ErrorReason.AUDIT_BACKLOG_FULL

    def __init__(self) -> None:
        super().__init__(
            "the audit backlog is full; no decision was made, retry later",
            retry_after_seconds=1.0,
        )
