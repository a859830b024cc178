"""A template's policy narrowed by explicit fields: limits only tighten, new ones add, nothing
widens (issue #20: "explicit fields may only narrow it")."""

from __future__ import annotations

import pytest

from keyleash_core.money import Money
from keyleash_core.policy import (
    AttributeConstraint,
    ExceedsParent,
    Policy,
    RateLimit,
    SpendCap,
    SpendWindow,
)
from keyleash_core.policy_narrowing import narrowed

USD = 1_000_000
TEMPLATE = Policy(
    rate_limits=(RateLimit(10, 60_000),),
    spend_caps=(SpendCap(Money("USD", 500 * USD), SpendWindow.ROLLING_24H),),
    max_cost_per_call=Money("USD", 50 * USD),
    allowed_vendors=("openai", "anthropic"),
    constraints=(AttributeConstraint("model", ("gpt-*", "claude-*")),),
)


def test_nothing_explicit_is_the_template() -> None:
    assert narrowed(TEMPLATE, Policy()) == TEMPLATE


def test_explicit_fields_tighten_and_add() -> None:
    result = narrowed(
        TEMPLATE,
        Policy(
            rate_limits=(RateLimit(5, 60_000), RateLimit(100, 3_600_000)),
            spend_caps=(SpendCap(Money("USD", 20 * USD), SpendWindow.CALENDAR_MONTH),),
            max_cost_per_call=Money("USD", USD),
            allowed_vendors=("openai",),
            constraints=(AttributeConstraint("model", ("gpt-4o*",)),),
            max_calls=7,
        ),
    )
    assert result.rate_limits == (RateLimit(5, 60_000), RateLimit(100, 3_600_000))
    assert {c.window for c in result.spend_caps} == {
        SpendWindow.ROLLING_24H,  # the template's cap stays
        SpendWindow.CALENDAR_MONTH,
    }
    assert result.max_cost_per_call == Money("USD", USD) and result.max_calls == 7
    assert result.allowed_vendors == ("openai",)
    assert result.constraints == (AttributeConstraint("model", ("gpt-4o*",)),)


@pytest.mark.parametrize(
    ("explicit", "field"),
    [
        (Policy(rate_limits=(RateLimit(11, 60_000),)), "policy.rate_limits[0]"),
        (Policy(spend_caps=(SpendCap(Money("USD", 501 * USD), SpendWindow.ROLLING_24H),)),
         "policy.spend_caps[0]"),
        (Policy(spend_caps=(SpendCap(Money("EUR", USD), SpendWindow.ROLLING_24H),)),
         "policy.spend_caps[0]"),
        (Policy(max_cost_per_call=Money("USD", 51 * USD)), "policy.max_cost_per_call"),
        (Policy(allowed_vendors=("aws",)), "policy.allowed_vendors"),
        (Policy(constraints=(AttributeConstraint("model", ("*",)),)), "policy.constraints[model]"),
    ],
)  # fmt: skip
def test_nothing_widens(explicit: Policy, field: str) -> None:
    with pytest.raises(ExceedsParent) as caught:
        narrowed(TEMPLATE, explicit)
    assert caught.value.field == field
