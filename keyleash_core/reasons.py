"""Every reason Keyleash sends on the wire, as Python enums tested against the protos' enums.

`ErrorReason` is the `google.rpc.ErrorInfo.reason` of a failed RPC (the `ErrorReason` enum of
each service's proto, without its `ERROR_REASON_` prefix); `DenyReason` is why Authorize said
DENY (`keyleash.vault.v1.DenyReason` without `DENY_REASON_`). Errors and decisions take these
enums, never free strings, and tests/unit/test_reasons.py fails when code can send a reason a
service's proto lacks.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorReason(StrEnum):
    # Sent by both services.
    INTERNAL = "INTERNAL"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    STORE_TIMEOUT = "STORE_TIMEOUT"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    # Vault only.
    EXCEEDS_PARENT = "EXCEEDS_PARENT"
    KEY_STATE = "KEY_STATE"
    DEPTH_EXCEEDED = "DEPTH_EXCEEDED"
    AUDIT_BACKLOG_FULL = "AUDIT_BACKLOG_FULL"
    CONNECTION_NOT_FOUND = "CONNECTION_NOT_FOUND"
    SECRETS_KEY_UNAVAILABLE = "SECRETS_KEY_UNAVAILABLE"
    CONNECTION_EXISTS = "CONNECTION_EXISTS"
    EXCEEDS_TEMPLATE = "EXCEEDS_TEMPLATE"
    TEMPLATE_EXISTS = "TEMPLATE_EXISTS"
    # Metering only.
    UNKNOWN_MODEL = "UNKNOWN_MODEL"
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"


class DenyReason(StrEnum):
    KEY_UNKNOWN = "KEY_UNKNOWN"
    KEY_REVOKED = "KEY_REVOKED"
    KEY_FROZEN = "KEY_FROZEN"
    KEY_EXPIRED = "KEY_EXPIRED"
    SCOPE_DENIED = "SCOPE_DENIED"
    ENDPOINT_DENIED = "ENDPOINT_DENIED"
    VENDOR_DENIED = "VENDOR_DENIED"
    CONSTRAINT_DENIED = "CONSTRAINT_DENIED"
    RATE_LIMITED = "RATE_LIMITED"
    SPEND_CAP_EXCEEDED = "SPEND_CAP_EXCEEDED"
    RUN_CAP_EXCEEDED = "RUN_CAP_EXCEEDED"
    PER_CALL_CAP_EXCEEDED = "PER_CALL_CAP_EXCEEDED"
    CALLS_EXHAUSTED = "CALLS_EXHAUSTED"
    TENANT_THROTTLED = "TENANT_THROTTLED"
    MODEL_UNKNOWN = "MODEL_UNKNOWN"
