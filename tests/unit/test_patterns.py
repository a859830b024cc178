"""Policy patterns: what they match, and when a child's pattern allows nothing its parent's
does not (so a key may narrow "+1*" to "+1415*" but never widen it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyleash_core.money import Money
from keyleash_core.patterns import (
    endpoint_pattern_within,
    uncovered,
    value_allowed,
    value_pattern_within,
)
from keyleash_core.policy import AttributeConstraint, ExceedsParent, Policy, check_within_parent


@pytest.mark.parametrize(
    ("child", "parent", "within"),
    [
        ("+1415*", "+1*", True),
        ("+1*", "+1*", True),
        ("+14155550100", "+1*", True),
        ("+1*", "+1415*", False),  # wider
        ("+44*", "+1*", False),
        ("*@eu.acme.com", "*@acme.com", False),  # ops@eu.acme.com is not @acme.com
        ("*-ops@acme.com", "*@acme.com", True),
        ("ops@acme.com", "*@acme.com", True),
        ("*@acme.com", "*@eu.acme.com", False),
        ("*@acme.com.evil", "*@acme.com", False),
        ("+1*", "*@acme.com", False),  # a prefix pattern matches values of any ending
        ("*", "*", True),  # a lone "*" is the literal value "*"
        ("+1*", "+14155550100", False),
    ],
)
def test_value_pattern_within(child: str, parent: str, within: bool) -> None:
    assert value_pattern_within(child, parent) is within


_ALPHABET = st.sampled_from(["+", "1", "4", "@", "a", ".", "*"])


@given(
    child=st.text(_ALPHABET, min_size=1, max_size=6),
    parent=st.text(_ALPHABET, min_size=1, max_size=6),
    value=st.text(_ALPHABET, max_size=8),
)
def test_within_means_no_value_escapes(child: str, parent: str, value: str) -> None:
    if value_pattern_within(child, parent) and value_allowed(child, value):
        assert value_allowed(parent, value)


@pytest.mark.parametrize(
    ("child", "parent", "within"),
    [
        ("GET /v1/customers/cus_1", "GET /v1/customers/*", True),
        ("GET /v1/customers/*", "GET /v1/customers/*", True),
        ("POST /v1/charges", "* /v1/charges", True),
        ("* /v1/charges", "POST /v1/charges", False),
        ("GET /v1/customers/*", "GET /v1/customers/cus_1", False),
        ("GET /v1/customers", "GET /v1/customers/*", False),
    ],
)
def test_endpoint_pattern_within(child: str, parent: str, within: bool) -> None:
    assert endpoint_pattern_within(child, parent) is within


def test_uncovered_lists_what_escapes() -> None:
    assert uncovered(["+1415*", "+44*", "+1*"], ["+1*"]) == ["+44*"]


def _to(*values: str) -> Policy:
    return Policy(constraints=(AttributeConstraint("to", values),))


def test_a_child_may_narrow_a_prefix_but_not_widen_it() -> None:
    check_within_parent(_to("+1415*", "+12125550100"), _to("+1*"))
    with pytest.raises(ExceedsParent) as caught:
        check_within_parent(_to("+1*", "+44*"), _to("+1415*"))
    assert caught.value.field == "policy.constraints[to]"
    assert "+1*" in str(caught.value) and "+44*" in str(caught.value)


def test_a_child_may_pin_one_endpoint_of_a_wildcard() -> None:
    parent = Policy(allowed_endpoints=("GET /v1/customers/*",), max_cost_per_call=Money("USD", 1))
    child = Policy(
        allowed_endpoints=("GET /v1/customers/cus_1",), max_cost_per_call=Money("USD", 1)
    )
    check_within_parent(child, parent)
    with pytest.raises(ExceedsParent):
        check_within_parent(parent, child)
