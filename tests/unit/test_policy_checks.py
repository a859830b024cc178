"""Pure policy logic: endpoint patterns, call checks, child-within-parent, JSON round trips."""

from __future__ import annotations

import pytest

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.patterns import endpoint_matches
from keyleash_core.policy import (
    AttributeConstraint,
    ExceedsParent,
    Policy,
    RateLimit,
    SpendCap,
    SpendWindow,
    check_within_parent,
)
from vault_service.domain.checks import CallRequest, check_call

USD = "USD"


@pytest.mark.parametrize(
    ("pattern", "method", "path", "expected"),
    [
        ("POST /v1/charges", "POST", "/v1/charges", True),
        ("POST /v1/charges", "post", "/v1/charges/", True),
        ("POST /v1/charges", "GET", "/v1/charges", False),
        ("GET /v1/customers/*", "GET", "/v1/customers/cus_1", True),
        ("GET /v1/customers/*", "GET", "/v1/customers", False),
        ("GET /v1/customers/*", "GET", "/v1/customers/cus_1/cards", False),
        ("GET /v1/customers/*", "GET", "/v1/customers/cus_1?expand=x", True),
        ("* /v1/ping", "DELETE", "/v1/ping", True),
    ],
)
def test_endpoint_patterns(pattern: str, method: str, path: str, expected: bool) -> None:
    assert endpoint_matches(pattern, method, path) is expected


def record(policy: Policy, scopes: tuple[str, ...] = ("s",), key_id: str = "k1") -> KeyRecord:
    return KeyRecord(
        key_id=key_id, tenant_id="t", parent_key_id="", key_path=(key_id,), agent_id="a",
        label="", scopes=scopes, policy=policy, policy_version=1, state=KeyState.ACTIVE,
        create_time_ms=0, expire_time_ms=10**13,
    )  # fmt: skip


def call(**overrides: object) -> CallRequest:
    values: dict[str, object] = {
        "scope": "s", "vendor": "stripe", "method": "POST", "path": "/v1/charges",
        "estimated_cost": Money(USD, 100), "agent_run_id": "", "attributes": {}, "request_id": "",
    }  # fmt: skip
    values.update(overrides)
    return CallRequest(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "overrides", "reason"),
    [
        (Policy(), {"scope": "other"}, "SCOPE_DENIED"),
        (Policy(allowed_vendors=("twilio",)), {}, "VENDOR_DENIED"),
        (Policy(allowed_endpoints=("GET /x",)), {}, "ENDPOINT_DENIED"),
        (
            Policy(constraints=(AttributeConstraint("customer_id", ("c1",)),)),
            {},
            "CONSTRAINT_DENIED",
        ),
        (Policy(max_cost_per_call=Money(USD, 99)), {}, "PER_CALL_CAP_EXCEEDED"),
        # Another currency than a cap, without a rate for the pair: FX_RATE_UNKNOWN.
        (Policy(max_cost_per_call=Money("EUR", 10**6)), {}, "FX_RATE_UNKNOWN"),
        (
            Policy(spend_caps=(SpendCap(Money("EUR", 10**6), SpendWindow.LIFETIME),)),
            {},
            "FX_RATE_UNKNOWN",
        ),
        (Policy(), {}, None),
        (Policy(max_cost_per_call=Money(USD, 100)), {}, None),
    ],
)
def test_check_call(policy: Policy, overrides: dict[str, object], reason: str | None) -> None:
    denial = check_call([record(policy)], call(**overrides))
    assert (denial.reason if denial else None) == reason


def test_ancestor_policy_applies_to_child() -> None:
    parent = record(Policy(allowed_vendors=("twilio",)), key_id="p")
    child = record(Policy(), key_id="c")
    denial = check_call([child, parent], call())
    assert denial is not None and denial.subject == "tenants/t/keys/p"


PARENT = Policy(
    rate_limits=(RateLimit(10, 60_000),),
    spend_caps=(SpendCap(Money(USD, 5_000_000), SpendWindow.CALENDAR_DAY),),
    max_cost_per_call=Money(USD, 1_000_000),
    allowed_vendors=("stripe", "twilio"),
    max_calls=100,
)


@pytest.mark.parametrize(
    ("child", "field"),
    [
        (Policy(rate_limits=(RateLimit(11, 60_000),), max_cost_per_call=Money(USD, 1), allowed_vendors=("stripe",), max_calls=1), "policy.rate_limits[0]"),
        (Policy(spend_caps=(SpendCap(Money(USD, 5_000_001), SpendWindow.CALENDAR_DAY),), max_cost_per_call=Money(USD, 1), allowed_vendors=("stripe",), max_calls=1), "policy.spend_caps[0]"),
        (Policy(allowed_vendors=("stripe",), max_calls=1), "policy.max_cost_per_call"),
        (Policy(max_cost_per_call=Money(USD, 1), max_calls=1), "policy.allowed_vendors"),
        (Policy(max_cost_per_call=Money(USD, 1), allowed_vendors=("paypal",), max_calls=1), "policy.allowed_vendors"),
        (Policy(max_cost_per_call=Money(USD, 1), allowed_vendors=("stripe",)), "policy.max_calls"),
    ],
)  # fmt: skip
def test_child_beyond_parent(child: Policy, field: str) -> None:
    with pytest.raises(ExceedsParent) as caught:
        check_within_parent(child, PARENT)
    assert caught.value.field == field


def test_child_within_parent() -> None:
    child = Policy(
        rate_limits=(RateLimit(5, 60_000), RateLimit(1, 1000)),
        spend_caps=(SpendCap(Money(USD, 1_000_000), SpendWindow.CALENDAR_DAY),),
        max_cost_per_call=Money(USD, 500_000),
        allowed_vendors=("stripe",),
        max_calls=50,
    )
    check_within_parent(child, PARENT)


def test_policy_json_round_trip() -> None:
    policy = Policy(
        rate_limits=(RateLimit(5, 60_000),),
        spend_caps=(SpendCap(Money(USD, 10**15), SpendWindow.ROLLING_24H),),
        max_cost_per_call=Money(USD, 1),
        run_spend_cap=Money(USD, 2),
        allowed_endpoints=("GET /x/*",),
        allowed_vendors=("stripe",),
        constraints=(AttributeConstraint("currency", ("usd",)),),
        max_calls=3,
    )
    assert Policy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize(
    ("eur_per_call_cap", "converted_eur", "reason"),
    [(93, 93, None), (92, 93, "PER_CALL_CAP_EXCEEDED"), (10**6, None, "FX_RATE_UNKNOWN")],
)
def test_costs_in_another_currency_are_checked_converted(
    eur_per_call_cap: int, converted_eur: int | None, reason: str | None
) -> None:
    policy = Policy(
        max_cost_per_call=Money("EUR", eur_per_call_cap),
        spend_caps=(SpendCap(Money("EUR", 10**6), SpendWindow.LIFETIME),),
    )
    converted = {} if converted_eur is None else {"EUR": converted_eur}
    denial = check_call([record(policy)], call(), converted)
    assert (denial.reason if denial else None) == reason
