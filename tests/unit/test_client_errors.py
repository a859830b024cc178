"""keyleash.client errors and retry policy, without a server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import grpc
import pytest
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from keyleash.client import errors
from keyleash.client._transport import AsyncInvoker, SyncInvoker
from keyleash.client.retry import NO_RETRY, RetryPolicy, is_safe_to_retry
from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_core import errors as server_errors
from keyleash_core.reasons import ErrorReason

VAULT, METERING = "vault.keyleash", "metering.keyleash"
UNAVAILABLE, PERMISSION_DENIED = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("server_error", "domain", "expected", "code", "reason", "retryable"),
    [
        (server_errors.InvalidArgument("policy.spend_caps[0].limit", "required"), VAULT, errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", False),
        (server_errors.Unauthenticated("missing credential"), VAULT, errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", False),
        (server_errors.PermissionDenied("more than the parent", reason=ErrorReason.EXCEEDS_PARENT, metadata={"field": "scopes"}), VAULT, errors.PermissionDenied, PERMISSION_DENIED, "EXCEEDS_PARENT", False),
        (server_errors.NotFound("no such key", reason=ErrorReason.KEY_NOT_FOUND), VAULT, errors.NotFound, grpc.StatusCode.NOT_FOUND, "KEY_NOT_FOUND", False),
        (server_errors.AlreadyExists("request_id reused"), METERING, errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED", False),
        (server_errors.FailedPrecondition("unknown model", reason=ErrorReason.UNKNOWN_MODEL), METERING, errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, "UNKNOWN_MODEL", False),
        (server_errors.StoreUnavailable("redis", "connection refused"), METERING, errors.Unavailable, UNAVAILABLE, "STORE_UNAVAILABLE", True),
        (server_errors.ResourceExhausted("slow down"), VAULT, errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS", False),
        (server_errors.Unimplemented("later"), VAULT, errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED, "NOT_IMPLEMENTED", False),
    ],
)  # fmt: skip
def test_status_decodes_into_the_typed_exception(
    server_error: server_errors.KeyleashError,
    domain: str,
    expected: type[errors.KeyleashError],
    code: grpc.StatusCode,
    reason: str,
    retryable: bool,
) -> None:
    decoded = errors.from_status(server_errors.to_rpc_status(server_error, domain))
    assert type(decoded) is expected
    assert (decoded.code, decoded.reason, decoded.domain) == (code, reason, domain)
    assert decoded.message == server_error.message
    assert decoded.metadata == server_error.metadata
    assert decoded.retryable is retryable


def test_field_violations_metadata_and_retry_info_are_kept() -> None:
    invalid = errors.from_status(
        server_errors.to_rpc_status(
            server_errors.InvalidArgument("policy.rate_limits[0].window", "at least 1s"), VAULT
        )
    )
    assert invalid.field_violations == (
        errors.FieldViolation("policy.rate_limits[0].window", "at least 1s"),
    )
    assert invalid.metadata == {"field": "policy.rate_limits[0].window"}
    assert invalid.retry_after is None
    unavailable = errors.from_status(
        server_errors.to_rpc_status(server_errors.StoreUnavailable("postgres"), METERING)
    )
    assert unavailable.retry_after == pytest.approx(1.0)
    assert unavailable.metadata == {"store": "postgres"}


def aio_error(
    code: grpc.StatusCode, details: str, status: status_pb2.Status | None
) -> grpc.aio.AioRpcError:
    trailers = grpc.aio.Metadata()
    if status is not None:
        trailers.add(errors.DETAILS_METADATA_KEY, status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details)


def test_rpc_error_with_rich_status_in_trailers() -> None:
    status = server_errors.to_rpc_status(
        server_errors.PermissionDenied(
            "a child may not exceed its parent",
            reason=ErrorReason.EXCEEDS_PARENT,
            metadata={"field": "policy.spend_caps[0]"},
        ),
        VAULT,
    )
    decoded = errors.from_rpc_error(aio_error(PERMISSION_DENIED, status.message, status))
    assert isinstance(decoded, errors.PermissionDenied)
    assert (decoded.reason, decoded.domain) == ("EXCEEDS_PARENT", VAULT)
    assert decoded.metadata["field"] == "policy.spend_caps[0]"
    assert "EXCEEDS_PARENT" in str(decoded)


def test_rpc_error_without_details_still_gets_its_class() -> None:
    decoded = errors.from_rpc_error(aio_error(UNAVAILABLE, "connection refused", None))
    assert isinstance(decoded, errors.Unavailable) and decoded.retryable
    assert (decoded.message, decoded.reason) == ("connection refused", "")
    other = errors.from_rpc_error(aio_error(grpc.StatusCode.DATA_LOSS, "lost", None))
    assert type(other) is errors.KeyleashError and not other.retryable


def deny(reason: int, retry_ms: int | None = None) -> vault_pb2.AuthorizeResponse:
    response = vault_pb2.AuthorizeResponse(
        decision=vault_pb2.DECISION_DENY,
        reason=cast(vault_pb2.DenyReason, reason),
        message="no",
        quotas=[vault_pb2.QuotaStatus(quota="rate/60s", limit=1, used=1)],
    )
    if retry_ms is not None:
        response.retry_after.CopyFrom(duration_pb2.Duration(nanos=retry_ms * 1_000_000))
    return response


@pytest.mark.parametrize(
    ("reason", "expected", "retryable"),
    [
        (vault_pb2.DENY_REASON_RATE_LIMITED, errors.RateLimited, True),
        (vault_pb2.DENY_REASON_SPEND_CAP_EXCEEDED, errors.BudgetExhausted, False),
        (vault_pb2.DENY_REASON_RUN_CAP_EXCEEDED, errors.BudgetExhausted, False),
        (vault_pb2.DENY_REASON_PER_CALL_CAP_EXCEEDED, errors.BudgetExhausted, False),
        (vault_pb2.DENY_REASON_CALLS_EXHAUSTED, errors.BudgetExhausted, False),
        (vault_pb2.DENY_REASON_TENANT_THROTTLED, errors.BudgetExhausted, False),
        (vault_pb2.DENY_REASON_KEY_UNKNOWN, errors.KeyBlocked, False),
        (vault_pb2.DENY_REASON_KEY_REVOKED, errors.KeyBlocked, False),
        (vault_pb2.DENY_REASON_KEY_FROZEN, errors.KeyBlocked, False),
        (vault_pb2.DENY_REASON_KEY_EXPIRED, errors.KeyBlocked, False),
        (vault_pb2.DENY_REASON_SCOPE_DENIED, errors.Denied, False),
        (vault_pb2.DENY_REASON_CONSTRAINT_DENIED, errors.Denied, False),
    ],
)
def test_deny_decisions_map_to_decision_exceptions(
    reason: int, expected: type[errors.Denied], retryable: bool
) -> None:
    with pytest.raises(errors.Denied) as caught:
        errors.raise_for_decision(deny(reason, 250))
    assert type(caught.value) is expected
    assert caught.value.retryable is retryable
    assert caught.value.code is None
    assert caught.value.reason == vault_pb2.DenyReason.Name(reason).removeprefix("DENY_REASON_")
    assert caught.value.retry_after == pytest.approx(0.25)
    assert caught.value.quotas[0].quota == "rate/60s"


def test_allow_passes_and_unknown_reasons_stay_denied() -> None:
    allow = vault_pb2.AuthorizeResponse(decision=vault_pb2.DECISION_ALLOW)
    assert errors.raise_for_decision(allow) is allow
    unknown = errors.denied_from_response(deny(99))
    assert type(unknown) is errors.Denied and unknown.reason == "99"
    assert unknown.retry_after is None


# ---- retry policy ----------------------------------------------------------------------------

AUTHORIZE = vault_pb2.AuthorizeRequest(key="vk", scope="s")
AUTHORIZE_ID = vault_pb2.AuthorizeRequest(key="vk", scope="s", request_id="r")
MINT = vault_pb2.MintKeyRequest(agent_id="a")
MINT_ID = vault_pb2.MintKeyRequest(agent_id="a", request_id="m")
CHARGE_ID = metering_pb2.ChargeRequest(key_id="k", request_id="c")


@pytest.mark.parametrize(
    ("rpc", "request_", "code", "retried"),
    [
        ("GetKey", vault_pb2.GetKeyRequest(name="n"), UNAVAILABLE, True),
        ("ListKeys", vault_pb2.ListKeysRequest(), UNAVAILABLE, True),
        ("ValidateKey", vault_pb2.ValidateKeyRequest(key="vk"), UNAVAILABLE, True),
        ("GetSpend", metering_pb2.GetSpendRequest(tenant_id="t"), UNAVAILABLE, True),
        ("GetTenant", metering_pb2.GetTenantRequest(tenant_id="t"), UNAVAILABLE, True),
        ("ListBillingEvents", metering_pb2.ListBillingEventsRequest(), UNAVAILABLE, True),
        ("Charge", CHARGE_ID, UNAVAILABLE, True),
        ("RecordUsage", metering_pb2.RecordUsageRequest(request_id="u"), UNAVAILABLE, True),
        ("Authorize", AUTHORIZE_ID, UNAVAILABLE, True),
        ("MintKey", MINT_ID, UNAVAILABLE, True),
        # No request_id: a second attempt could consume or mint twice.
        ("Authorize", AUTHORIZE, UNAVAILABLE, False),
        ("MintKey", MINT, UNAVAILABLE, False),
        ("Charge", metering_pb2.ChargeRequest(key_id="k"), UNAVAILABLE, False),
        # Mutations without idempotency keys are never retried.
        ("RevokeKey", vault_pb2.RevokeKeyRequest(name="n"), UNAVAILABLE, False),
        ("FreezeKey", vault_pb2.FreezeKeyRequest(name="n"), UNAVAILABLE, False),
        ("UnfreezeKey", vault_pb2.UnfreezeKeyRequest(name="n"), UNAVAILABLE, False),
        ("UpdateKeyPolicy", vault_pb2.UpdateKeyPolicyRequest(name="n"), UNAVAILABLE, False),
        ("SetTenantBudget", metering_pb2.SetTenantBudgetRequest(tenant_id="t"), UNAVAILABLE, False),
        ("AuthorizeStream", None, UNAVAILABLE, False),
        # Other codes: never, whatever the call.
        ("GetKey", vault_pb2.GetKeyRequest(name="n"), grpc.StatusCode.DEADLINE_EXCEEDED, False),
        ("Charge", CHARGE_ID, grpc.StatusCode.DEADLINE_EXCEEDED, False),
        ("Charge", CHARGE_ID, grpc.StatusCode.INTERNAL, False),
        ("Authorize", AUTHORIZE_ID, grpc.StatusCode.RESOURCE_EXHAUSTED, False),
        ("GetKey", vault_pb2.GetKeyRequest(name="n"), PERMISSION_DENIED, False),
        ("Charge", CHARGE_ID, grpc.StatusCode.ALREADY_EXISTS, False),
    ],
)  # fmt: skip
def test_which_calls_and_codes_are_retried(
    rpc: str, request_: Message | None, code: grpc.StatusCode, retried: bool
) -> None:
    assert is_safe_to_retry(rpc, request_, code) is retried
    error = errors.error_class(code)(code, "x")
    delay = RetryPolicy().next_delay(rpc, request_, error, attempt=1, elapsed=0.0)
    assert (delay is not None) is retried


def unavailable(retry_after: float | None = None) -> errors.KeyleashError:
    return errors.Unavailable(UNAVAILABLE, "down", retry_after=retry_after)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.1, multiplier=2.0, max_backoff=1.0)
    assert [policy.backoff(n, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0]
    )
    assert policy.backoff(3, rand=lambda: 0.5) == pytest.approx(0.2)
    assert policy.backoff(1, rand=lambda: 0.0) == 0.0
    # The server's RetryInfo is a floor, itself capped by max_backoff.
    assert policy.backoff(1, retry_after=0.5, rand=lambda: 0.0) == pytest.approx(0.5)
    assert policy.backoff(1, retry_after=30.0, rand=lambda: 0.0) == pytest.approx(1.0)


def test_attempts_and_deadline_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.1, deadline=1.0)
    get = vault_pb2.GetKeyRequest(name="n")
    assert policy.next_delay("GetKey", get, unavailable(), 2, 0.0) is not None
    assert policy.next_delay("GetKey", get, unavailable(), 3, 0.0) is None
    assert policy.next_delay("GetKey", get, unavailable(0.5), 1, 0.6) is None
    assert NO_RETRY.next_delay("GetKey", get, unavailable(), 1, 0.0) is None
    assert policy.next_delay("GetKey", get, errors.Denied("RATE_LIMITED"), 1, 0.0) is None


class FlakyStub:
    """A stub whose `rpc` fails with `failures` UNAVAILABLE errors, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode = UNAVAILABLE) -> None:
        self.failures = failures
        self.code = code
        self.seen: list[tuple[Message, Any]] = []

    def _answer(self, request: Message, metadata: Any) -> vault_pb2.Key:
        self.seen.append((request, metadata))
        if len(self.seen) <= self.failures:
            raise aio_error(self.code, "down", None)
        return vault_pb2.Key(name="answered")

    def sync(self, request: Message, *, timeout: float, metadata: Any) -> vault_pb2.Key:
        return self._answer(request, metadata)

    async def aio(self, request: Message, *, timeout: float, metadata: Any) -> vault_pb2.Key:  # noqa: ASYNC109
        return self._answer(request, metadata)


FAST = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.002)


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_invokers_resend_the_same_request_then_stop(flavour: str) -> None:
    def run(stub: FlakyStub, rpc: str, request: Message) -> vault_pb2.Key:
        holder = type("Stub", (), {rpc: getattr(stub, flavour)})()
        if flavour == "sync":
            return SyncInvoker(holder, "tok", 1.0, FAST).unary(
                rpc, request, vault_pb2.Key, None, None
            )
        invoker = AsyncInvoker(holder, "tok", 1.0, FAST)
        return asyncio.run(invoker.unary(rpc, request, vault_pb2.Key, None, None))

    stub = FlakyStub(failures=2)
    assert run(stub, "Charge", CHARGE_ID).name == "answered"
    assert [r for r, _ in stub.seen] == [CHARGE_ID] * 3  # same request_id every attempt
    assert all(("authorization", "Bearer tok") in md for _, md in stub.seen)

    always_down = FlakyStub(failures=99)
    with pytest.raises(errors.Unavailable):
        run(always_down, "GetKey", vault_pb2.GetKeyRequest(name="n"))
    assert len(always_down.seen) == FAST.max_attempts

    once: list[tuple[str, Message, FlakyStub]] = [
        ("RevokeKey", vault_pb2.RevokeKeyRequest(name="n"), FlakyStub(failures=1)),
        ("Authorize", AUTHORIZE, FlakyStub(failures=1)),
        ("GetKey", vault_pb2.GetKeyRequest(name="n"), FlakyStub(1, PERMISSION_DENIED)),
    ]
    for rpc, request, flaky in once:
        with pytest.raises(errors.KeyleashError):
            run(flaky, rpc, request)
        assert len(flaky.seen) == 1, rpc


def test_error_class_covers_the_documented_codes() -> None:
    table: dict[grpc.StatusCode, Callable[..., errors.KeyleashError]] = {
        grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
        grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
        grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
        grpc.StatusCode.NOT_FOUND: errors.NotFound,
        grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
        grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
        grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    }
    for code, cls in table.items():
        assert errors.error_class(code) is cls
    assert [c for c in table if errors.error_class(c).retryable] == [grpc.StatusCode.UNAVAILABLE]
