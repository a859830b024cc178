"""Typed exceptions: RPC failures decoded from `grpc-status-details-bin`, and denied decisions.

Every exception derives from `KeyleashError` and says whether trying again may help
(`.retryable`):

- RPC failures carry the gRPC `code`, the server's `reason` and `domain` (google.rpc.ErrorInfo,
  e.g. "EXCEEDS_PARENT" in "vault.keyleash"), its `metadata` (e.g. {"field": "scopes"}), the
  `field_violations` of a google.rpc.BadRequest and the `retry_after` (seconds) of a
  google.rpc.RetryInfo. Only `Unavailable` is retryable: nothing was decided or recorded, so the
  same request (with the same request_id) may be sent again.
- Decisions are not RPC failures: Authorize answers DECISION_DENY. `guard()` (or
  `raise_for_decision`) turns a DENY into a `Denied` subclass with `code` None: `RateLimited`
  (retryable after `retry_after`), `BudgetExhausted` and `KeyBlocked` (never retryable: agent
  frameworks should stop, not retry), or plain `Denied` for policy refusals (scope, endpoint,
  vendor, attribute constraints).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from keyleash.vault.v1 import vault_pb2

DETAILS_METADATA_KEY = "grpc-status-details-bin"
_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
_DENY_PREFIX = "DENY_REASON_"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field (google.rpc.BadRequest), e.g. "policy.spend_caps[0].limit"."""

    field: str
    description: str


class KeyleashError(Exception):
    """Base of every exception the client raises.

    `code` is the gRPC status code of a failed RPC, or None for a denied decision.
    `retry_after` is in seconds, when the server said how long to wait.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        code: grpc.StatusCode | None,
        message: str,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations = tuple(field_violations)
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = self.code.name if self.code is not None else "DENIED"
        reason = f" {self.reason}" if self.reason else ""
        return f"{code}{reason}: {self.message}"


class InvalidArgument(KeyleashError):
    """The request is malformed; `field_violations` (and metadata["field"]) name the field."""


class Unauthenticated(KeyleashError):
    """No credential, or one the server does not accept."""


class PermissionDenied(KeyleashError):
    """A valid credential, but not for this subject (e.g. reason EXCEEDS_PARENT)."""


class NotFound(KeyleashError):
    """The named resource does not exist or is not visible to the caller."""


class AlreadyExists(KeyleashError):
    """Usually REQUEST_ID_REUSED: the request_id was used before with a different request."""


class FailedPrecondition(KeyleashError):
    """The operation does not apply to the resource's state (e.g. an unknown model)."""


class ResourceExhausted(KeyleashError):
    """Too many failed credential attempts."""


class DeadlineExceeded(KeyleashError):
    """The deadline passed; the outcome is unknown, so it is not retried automatically."""


class Unavailable(KeyleashError):
    """The service or its store is unreachable; nothing was decided or recorded. Retryable."""

    retryable: ClassVar[bool] = True


class Internal(KeyleashError):
    """A server bug; the message is generic."""


class Unimplemented(KeyleashError):
    """The RPC is not implemented by this server."""


_BY_CODE: dict[grpc.StatusCode, type[KeyleashError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def error_class(code: grpc.StatusCode) -> type[KeyleashError]:
    """The exception class for a gRPC status code (KeyleashError for codes without one)."""
    return _BY_CODE.get(code, KeyleashError)


def from_status(status: status_pb2.Status, code: grpc.StatusCode | None = None) -> KeyleashError:
    """The typed exception for a google.rpc.Status (its code wins unless `code` is given)."""
    code = code or _CODE_BY_VALUE.get(status.code, grpc.StatusCode.UNKNOWN)
    reason = domain = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry_after: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info_retry = error_details_pb2.RetryInfo()
            detail.Unpack(info_retry)
            retry_after = info_retry.retry_delay.ToNanoseconds() / 1e9
    return error_class(code)(
        code, status.message, reason, domain, metadata, violations, retry_after
    )


def status_from_metadata(
    trailing_metadata: Iterable[tuple[str, str | bytes]] | None,
) -> status_pb2.Status | None:
    """The google.rpc.Status in `grpc-status-details-bin`, if the trailers carry one."""
    for key, value in trailing_metadata or ():
        if key == DETAILS_METADATA_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def from_rpc_error(error: grpc.RpcError, unreachable: str = "") -> KeyleashError:
    """Decodes a failed call (grpc.aio.AioRpcError or a blocking stub's grpc.RpcError).

    `unreachable` is appended to an UNAVAILABLE the server did not explain (no status details:
    the channel reached no server), to say which address was tried and how to change it."""
    decoded = _decode(error)
    if unreachable and decoded.code == grpc.StatusCode.UNAVAILABLE and not decoded.reason:
        decoded.message = f"{decoded.message} ({unreachable})"
        decoded.args = (decoded.message,)
    return decoded


def _decode(error: grpc.RpcError) -> KeyleashError:
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details: str = (error.details() if hasattr(error, "details") else "") or ""
    status: status_pb2.Status | None = None
    if isinstance(error, grpc.aio.AioRpcError):
        status = status_from_metadata(error.trailing_metadata())
    elif isinstance(error, grpc.Call):
        try:
            status = rpc_status.from_call(error)
        except ValueError:  # code or message disagree with the trailer: trust the trailer's details
            status = status_from_metadata(error.trailing_metadata())
    if status is not None:
        return from_status(status, code)
    return error_class(code)(code, details)


# ---- decisions -------------------------------------------------------------------------------


class Denied(KeyleashError):
    """Authorize answered DECISION_DENY. `reason` is the DenyReason without its prefix
    (e.g. "SCOPE_DENIED"); `quotas` are the QuotaStatus the vault reported (the limiting one
    first); `response` is the whole AuthorizeResponse when there is one."""

    def __init__(
        self,
        reason: str,
        quotas: Sequence[vault_pb2.QuotaStatus] = (),
        message: str = "",
        *,
        retry_after: float | None = None,
        response: vault_pb2.AuthorizeResponse | None = None,
    ) -> None:
        super().__init__(
            None,
            message or f"denied: {reason}",
            reason,
            "vault.keyleash",
            retry_after=retry_after,
        )
        self.quotas = tuple(quotas)
        self.response = response


class RateLimited(Denied):
    """A rate limit is reached. Retryable: wait `retry_after` seconds, then try again."""

    retryable: ClassVar[bool] = True


class BudgetExhausted(Denied):
    """A spend cap, run cap, per-call cap, lifetime call count or the tenant's daily threshold
    stops this call. NOT retryable: agent frameworks should stop, not retry (a retry cannot
    succeed before a human raises the budget or the window rolls over).

    `approval` is the approval request the denial opened (or found pending) when the key's
    policy asks for one, "tenants/{t}/approvals/{id}" ("" otherwise); `approval_id` its id.
    `VaultClient.wait_for_approval(error.approval, timeout=...)` waits for a human's decision.
    """

    @property
    def approval(self) -> str:
        return self.response.approval if self.response is not None else ""

    @property
    def approval_id(self) -> str:
        return self.approval.rpartition("/")[2]


class KeyBlocked(Denied):
    """The key is unknown, revoked, frozen or expired. Not retryable."""


RATE_LIMIT_REASONS = frozenset({"RATE_LIMITED"})
BUDGET_REASONS = frozenset(
    {
        "SPEND_CAP_EXCEEDED",
        "RUN_CAP_EXCEEDED",
        "PER_CALL_CAP_EXCEEDED",
        "CALLS_EXHAUSTED",
        "TENANT_THROTTLED",
    }
)
KEY_REASONS = frozenset({"KEY_UNKNOWN", "KEY_REVOKED", "KEY_FROZEN", "KEY_EXPIRED"})


def denied_class(reason: str) -> type[Denied]:
    """The Denied subclass for a deny reason name (without the DENY_REASON_ prefix)."""
    if reason in RATE_LIMIT_REASONS:
        return RateLimited
    if reason in BUDGET_REASONS:
        return BudgetExhausted
    if reason in KEY_REASONS:
        return KeyBlocked
    return Denied


def deny_reason_name(reason: int) -> str:
    """The name without its prefix ("RATE_LIMITED"), or the number for one this client lacks."""
    try:
        name = vault_pb2.DenyReason.Name(reason)
    except ValueError:
        return str(reason)
    return name.removeprefix(_DENY_PREFIX)


def denied_from_response(response: vault_pb2.AuthorizeResponse) -> Denied:
    """The typed exception for a DENY decision."""
    reason = deny_reason_name(response.reason)
    retry_after = (
        response.retry_after.ToNanoseconds() / 1e9 if response.HasField("retry_after") else None
    )
    return denied_class(reason)(
        reason, response.quotas, response.message, retry_after=retry_after, response=response
    )


def raise_for_decision(response: vault_pb2.AuthorizeResponse) -> vault_pb2.AuthorizeResponse:
    """Returns an ALLOW response unchanged; raises the Denied subclass for anything else."""
    if response.decision != vault_pb2.DECISION_ALLOW:
        raise denied_from_response(response)
    return response
