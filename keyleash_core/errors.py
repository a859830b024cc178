"""Errors both services raise, and the one mapping from them to a rich gRPC status (AIP-193).

Domain code raises these; it never imports grpc. `to_rpc_status` turns one into a
`google.rpc.Status` that always carries `google.rpc.ErrorInfo`, plus `BadRequest`, `RetryInfo`
or `QuotaFailure` where they apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from keyleash_core.reasons import ErrorReason


@dataclass
class FieldViolation:
    """One bad field of a request, named by its path (e.g. "policy.spend_caps[0].limit")."""

    field: str
    description: str


class KeyleashError(Exception):
    """Base of every error a caller may see. `status` is a google.rpc.Code name."""

    status = "INTERNAL"
    default_reason = ErrorReason.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        reason: ErrorReason | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})
        self.violations = list(violations)
        self.retry_after_seconds = retry_after_seconds


class InvalidArgument(KeyleashError):
    """A malformed request; `violations` names the fields."""

    status = "INVALID_ARGUMENT"
    default_reason = ErrorReason.INVALID_ARGUMENT

    def __init__(self, field_path: str, description: str) -> None:
        super().__init__(
            f"{field_path}: {description}",
            violations=[FieldViolation(field_path, description)],
            metadata={"field": field_path},
        )


class Unauthenticated(KeyleashError):
    status = "UNAUTHENTICATED"
    default_reason = ErrorReason.UNAUTHENTICATED


class PermissionDenied(KeyleashError):
    status = "PERMISSION_DENIED"
    default_reason = ErrorReason.PERMISSION_DENIED


class NotFound(KeyleashError):
    status = "NOT_FOUND"
    default_reason = ErrorReason.NOT_FOUND


class AlreadyExists(KeyleashError):
    status = "ALREADY_EXISTS"
    default_reason = ErrorReason.REQUEST_ID_REUSED


class FailedPrecondition(KeyleashError):
    status = "FAILED_PRECONDITION"
    default_reason = ErrorReason.FAILED_PRECONDITION


class ResourceExhausted(KeyleashError):
    status = "RESOURCE_EXHAUSTED"
    default_reason = ErrorReason.TOO_MANY_ATTEMPTS


class DeadlineExceeded(KeyleashError):
    status = "DEADLINE_EXCEEDED"
    default_reason = ErrorReason.STORE_TIMEOUT


class Unimplemented(KeyleashError):
    status = "UNIMPLEMENTED"
    default_reason = ErrorReason.NOT_IMPLEMENTED


class StoreUnavailable(KeyleashError):
    """Redis or Postgres could not be reached: nothing was decided or acknowledged (fail closed)."""

    status = "UNAVAILABLE"
    default_reason = ErrorReason.STORE_UNAVAILABLE

    def __init__(self, store: str, detail: str = "") -> None:
        super().__init__(
            f"{store} is unavailable; nothing was decided or recorded, retry with the same "
            "request_id",
            metadata={"store": store, **({"detail": detail[:200]} if detail else {})},
            retry_after_seconds=1.0,
        )


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_rpc_status(error: KeyleashError, domain: str) -> status_pb2.Status:
    """The google.rpc.Status for `error`: ErrorInfo always, other details where they apply."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    details = [_pack(info)]
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(error.retry_after_seconds * 1000))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(
        code=getattr(code_pb2, error.status), message=error.message, details=details
    )


def internal_status(domain: str) -> status_pb2.Status:
    """What a caller sees for a bug: a generic message, never a traceback."""
    info = error_details_pb2.ErrorInfo(reason=ErrorReason.INTERNAL, domain=domain)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error", details=[_pack(info)]
    )


def grpc_code(error: KeyleashError) -> grpc.StatusCode:
    return grpc.StatusCode[error.status]


__all__ = [
    "AlreadyExists",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "KeyleashError",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "StoreUnavailable",
    "Unauthenticated",
    "Unimplemented",
    "internal_status",
    "to_rpc_status",
]
