"""The one mapping from gateway outcomes to HTTP answers an SDK understands (pure).

Denials: {"error": {"type": "keyleash_denied", "code": "<DenyReason without prefix>",
"message": ...}}: 402 budget, 429 rate (with Retry-After), 403 scope/endpoint/vendor/constraint
and an LLM model missing from the price table,
401 key unknown/frozen/revoked/expired. Keyleash unreachable: 503, nothing forwarded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum

from keyleash_core.reasons import DenyReason as D


class GatewayError(StrEnum):
    """The `code` of an answer that is not a decision (decisions carry a DenyReason name)."""

    UNAVAILABLE = "UNAVAILABLE"  # 503: Keyleash could not decide; nothing was sent
    INVALID_REQUEST = "INVALID_REQUEST"  # 400: the request cannot be priced or decided
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"  # 409: same key, another request
    BODY_TOO_LARGE = "BODY_TOO_LARGE"  # 413
    UNKNOWN_VENDOR = "UNKNOWN_VENDOR"  # 404: no /{vendor} route
    UPSTREAM_UNREACHABLE = "UPSTREAM_UNREACHABLE"  # 502: not sent, hold released
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  # 504: sent, no answer; the hold stays


UNAUTHORIZED = frozenset({D.KEY_UNKNOWN, D.KEY_REVOKED, D.KEY_FROZEN, D.KEY_EXPIRED})
FORBIDDEN = frozenset(
    {D.SCOPE_DENIED, D.ENDPOINT_DENIED, D.VENDOR_DENIED, D.CONSTRAINT_DENIED, D.MODEL_UNKNOWN}
)
BUDGET = frozenset(
    {
        D.SPEND_CAP_EXCEEDED,
        D.RUN_CAP_EXCEEDED,
        D.PER_CALL_CAP_EXCEEDED,
        D.CALLS_EXHAUSTED,
        D.TENANT_THROTTLED,
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


def denied(code: D, message: str, retry_after_seconds: float = 0.0, approval: str = "") -> Reply:
    """The answer to a DENY decision (or a refusal the gateway makes itself, same shape). A
    budget denial that opened an approval request names it ("approval")."""
    error = {"type": "keyleash_denied", "code": code.value, "message": message}
    if code in BUDGET:
        extra = {"approval": approval} if approval else {}
        return _json(402, error | {"message": f"{BUDGET_MESSAGE}: {message}"} | extra)
    if code is D.RATE_LIMITED:
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
        {"type": "keyleash_unavailable", "code": GatewayError.UNAVAILABLE, "message": message},
        [("Retry-After", "1")],
    )


def bad_request(message: str) -> Reply:
    return _json(
        400,
        {
            "type": "keyleash_invalid_request",
            "code": GatewayError.INVALID_REQUEST,
            "message": message,
        },
    )


def refused(status: int, code: GatewayError, message: str) -> Reply:
    """Vault refused the call as malformed (400) or as a reused Idempotency-Key (409)."""
    return _json(status, {"type": "keyleash_invalid_request", "code": code, "message": message})


def too_large(limit: int) -> Reply:
    return _json(
        413,
        {"type": "keyleash_invalid_request", "code": GatewayError.BODY_TOO_LARGE,
         "message": f"request bodies are limited to {limit} bytes"},
    )  # fmt: skip


def unknown_vendor(vendor: str) -> Reply:
    return _json(
        404,
        {"type": "keyleash_invalid_request", "code": GatewayError.UNKNOWN_VENDOR,
         "message": f"the gateway does not serve {vendor!r}; see /{{vendor}}/... in the docs"},
    )  # fmt: skip


def not_sent(vendor: str) -> Reply:
    return _json(
        502,
        {"type": "keyleash_upstream_unreachable", "code": GatewayError.UPSTREAM_UNREACHABLE,
         "message": f"{vendor} could not be reached; nothing was sent and nothing charged"},
    )  # fmt: skip


def outcome_unknown(vendor: str) -> Reply:
    return _json(
        504,
        {"type": "keyleash_upstream_timeout", "code": GatewayError.OUTCOME_UNKNOWN,
         "message": f"{vendor} did not answer; the call may have happened. Retry with the "
         "same Idempotency-Key to settle it exactly once"},
    )  # fmt: skip
