"""What the MCP tools tell an agent: money as text, exhausted limits, and errors that say
whether to stop, fix the arguments or retry (never a bare code)."""

from __future__ import annotations

import grpc
import pytest

from keyleash.client import errors
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_mcp.tools import ChildKeySpec, child_request
from keyleash_mcp.views import exhausted_spend, money_text, quota_view, tool_error_message


def test_money_text_is_exact() -> None:
    assert money_text(2_500_000, "USD") == "2.500000 USD"
    assert money_text(-1, "EUR") == "-0.000001 EUR"


def test_quota_view_and_exhausted_spend() -> None:
    spent = V.QuotaStatus(subject="tenants/t/keys/k", quota="spend/calendar_day", unit="USD",
                          limit=3_000_000, used=3_000_000, remaining=0)  # fmt: skip
    calls = V.QuotaStatus(subject="tenants/t/keys/k", quota="rate/60s", unit="requests",
                          limit=10, used=10, remaining=0)  # fmt: skip
    assert quota_view(spent)["remaining"] == "0.000000 USD"
    assert quota_view(calls)["remaining"] == 0
    assert exhausted_spend([spent, calls]) == ["tenants/t/keys/k spend/calendar_day"]


@pytest.mark.parametrize(
    ("error", "starts"),
    [
        (errors.Unauthenticated(grpc.StatusCode.UNAUTHENTICATED, "no"), "STOP: "),
        (errors.PermissionDenied(grpc.StatusCode.PERMISSION_DENIED, "m", "EXCEEDS_PARENT"),
         "not allowed (EXCEEDS_PARENT)"),
        (errors.InvalidArgument(grpc.StatusCode.INVALID_ARGUMENT, "scopes: empty"),
         "invalid arguments: scopes: empty"),
        (errors.Unavailable(grpc.StatusCode.UNAVAILABLE, "down"), "Keyleash is unavailable"),
    ],
)  # fmt: skip
def test_errors_say_what_to_do(error: errors.KeyleashError, starts: str) -> None:
    assert tool_error_message(error).startswith(starts)


def test_a_child_spec_becomes_a_mint_request_in_micros() -> None:
    spec = ChildKeySpec.model_validate({
        "agent_id": "a", "scopes": ["api.call"], "ttl_seconds": 600,
        "spend_caps": [{"amount": "1.234567", "currency": "USD", "window": "month"}],
        "rate_limits": [{"limit": 5, "window_seconds": 60}],
    })  # fmt: skip
    request = child_request(spec)
    assert request.policy.spend_caps[0].limit.micros == 1_234_567
    assert request.policy.spend_caps[0].window == V.SpendCap.WINDOW_CALENDAR_MONTH
    assert request.policy.rate_limits[0].window.seconds == 60 and request.ttl.seconds == 600
    with pytest.raises(ValueError):
        ChildKeySpec.model_validate({"agent_id": "a", "scopes": ["x"],
                                     "spend_caps": [{"amount": "1e9", "currency": "USD",
                                                     "window": "day"}]})  # fmt: skip
