"""The one mapping from gateway outcomes to HTTP answers an SDK understands (pure).

Denials: {"error": {"type": "keyleash_denied", "code": "<DenyReason without prefix>",
"message": ...}}: 402 budget, 429 rate (with Retry-After), 403 scope/endpoint/vendor/constraint,
401 key unknown/frozen/revoked/expired. Keyleash unreachable: 503, nothing forwarded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

UNAUTHORIZED = frozenset({"KEY_UNKNOWN", "KEY_REVOKED", "KEY_FROZEN", "KEY_EXPIRED"})
FORBIDDEN = frozenset({"SCOPE_DENIED", "ENDPOINT_DENIED", "VENDOR_DENIED", "CONSTRAINT_DENIED"})
BUDGET = frozenset(
    {
        "SPEND_CAP_EXCEEDED",
        "RUN_CAP_EXCEEDED",
        "PER_CALL_CAP_EXCEEDED",
        "CALLS_EXHAUSTED",
        "TENANT_THROTTLED",
    }
)
BUDGET_MESSAGE = "STOP: spend cap exhausted, do not retry"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(
    status: int, error: dict[str, str], headers: list[tuple[str, str]] | None = None
) -> Reply:
    body = json.dumps({"error": error}).encode()
    return Reply(status, body, [("Content-Type", "application/json"), *(headers or [])])


def denied(code: str, message: str, retry_after_seconds: float = 0.0) -> Reply:
    """The answer to a DENY decision (or a refusal the gateway makes itself, same shape)."""
    error = {"type": "keyleash_denied", "code": code, "message": message}
    if code in BUDGET:
        return _json(402, error | {"message": f"{BUDGET_MESSAGE}: {message}"})
    if code == "RATE_LIMITED":
        wait = str(max(1, math.ceil(retry_after_seconds)))
        return _json(429, error, [("Retry-After", wait)])
    if code in FORBIDDEN:
        return _json(403, error)
    if code in UNAUTHORIZED:
        return _json(401, error)
    return _json(403, error)


def unavailable(message: str) -> Reply:
    return _json(
        503,
        {"type": "keyleash_unavailable", "code": "UNAVAILABLE", "message": message},
        [("Retry-After", "1")],
    )


def bad_request(message: str) -> Reply:
    return _json(
        400, {"type": "keyleash_invalid_request", "code": "INVALID_REQUEST", "message": message}
    )


def refused(status: int, code: str, message: str) -> Reply:
    """Vault refused the call as malformed (400) or as a reused Idempotency-Key (409)."""
    return _json(status, {"type": "keyleash_invalid_request", "code": code, "message": message})


def too_large(limit: int) -> Reply:
    return _json(
        413,
        {"type": "keyleash_invalid_request", "code": "BODY_TOO_LARGE",
         "message": f"request bodies are limited to {limit} bytes"},
    )  # fmt: skip


def unknown_vendor(vendor: str) -> Reply:
    return _json(
        404,
        {"type": "keyleash_invalid_request", "code": "UNKNOWN_VENDOR",
         "message": f"the gateway does not serve {vendor!r}; see /{{vendor}}/... in the docs"},
    )  # fmt: skip


def not_sent(vendor: str) -> Reply:
    return _json(
        502,
        {"type": "keyleash_upstream_unreachable", "code": "UPSTREAM_UNREACHABLE",
         "message": f"{vendor} could not be reached; nothing was sent and nothing charged"},
    )  # fmt: skip


def outcome_unknown(vendor: str) -> Reply:
    return _json(
        504,
        {"type": "keyleash_upstream_timeout", "code": "OUTCOME_UNKNOWN",
         "message": f"{vendor} did not answer; the call may have happened. Retry with the "
         "same Idempotency-Key to settle it exactly once"},
    )  # fmt: skip
