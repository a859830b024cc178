"""Pure: what a tool answers. Quotas as plain JSON, and errors as messages an LLM cannot take
for a transient failure (it is told whether to stop, fix its arguments, or retry)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from keyleash.client.errors import (
    FailedPrecondition,
    InvalidArgument,
    KeyleashError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from keyleash.vault.v1 import vault_pb2 as V

STOP_BUDGET = "STOP: spend cap exhausted, do not retry"
_BLOCKED = {"KEY_FROZEN", "KEY_REVOKED", "KEY_EXPIRED", "KEY_UNKNOWN", "UNAUTHENTICATED"}


def money_text(micros: int, currency: str) -> str:
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    return f"{sign}{micros // 1_000_000}.{micros % 1_000_000:06d} {currency}"


def quota_view(quota: V.QuotaStatus) -> dict[str, Any]:
    """One limit: used / limit / remaining, money as text with its currency."""
    view: dict[str, Any] = {"subject": quota.subject, "quota": quota.quota}
    if quota.unit == "requests":
        view |= {"used": quota.used, "limit": quota.limit, "remaining": quota.remaining}
    else:
        view |= {
            "used": money_text(quota.used, quota.unit),
            "limit": money_text(quota.limit, quota.unit),
            "remaining": money_text(quota.remaining, quota.unit),
        }
    if quota.HasField("reset_time"):
        view["resets_at"] = quota.reset_time.ToJsonString()
    return view


def exhausted_spend(quotas: Iterable[V.QuotaStatus]) -> list[str]:
    """The money quotas with nothing left ("tenants/t/keys/k spend/calendar_day")."""
    return [f"{q.subject} {q.quota}" for q in quotas if q.unit != "requests" and q.remaining <= 0]


def tool_error_message(error: KeyleashError) -> str:
    """What a failed Keyleash call tells the agent."""
    reason = error.reason or (error.code.name if error.code is not None else "")
    if isinstance(error, Unauthenticated) or reason in _BLOCKED:
        return (
            f"STOP: this vault key can no longer be used ({reason or 'refused'}): do not retry; "
            "ask a human operator."
        )
    if isinstance(error, PermissionDenied):
        return f"not allowed ({reason}): {error.message}. Do not retry the same request."
    if isinstance(error, InvalidArgument):
        return f"invalid arguments: {error.message}. Fix them before calling again."
    if isinstance(error, NotFound):
        return f"not found: {error.message}"
    if isinstance(error, FailedPrecondition):
        return f"cannot do this now ({reason}): {error.message}"
    if isinstance(error, Unavailable):
        return "Keyleash is unavailable; nothing was done. This is transient: retry in a moment."
    return f"refused ({reason}): {error.message}"
