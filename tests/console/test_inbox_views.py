"""The inbox's and templates' pure parts: amounts typed by an operator, a policy's limits as
text, and the session's memory of which minted secrets were shown."""

from __future__ import annotations

import pytest
from google.protobuf import duration_pb2
from hypothesis import given
from hypothesis import strategies as st

from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_console import inbox
from keyleash_console.sessions import MAX_SHOWN_REQUESTS, SessionStore


def usd(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


def test_an_amount_is_parsed_exactly_in_the_caps_currency() -> None:
    assert inbox.parse_amount("5", "USD") == usd(5_000_000)
    assert inbox.parse_amount(" 2.50 USD ", "USD") == usd(2_500_000)
    assert inbox.parse_amount("0.000001", "USD") == usd(1)
    assert inbox.parse_amount("3 eur", "EUR").micros == 3_000_000


@pytest.mark.parametrize(
    "typed", ["", "abc", "0", "-1", "1.0000001", "2 EUR", "NaN", "Infinity", "1e30", "1,5"]
)
def test_a_bad_amount_is_refused(typed: str) -> None:
    with pytest.raises(inbox.AmountError):
        inbox.parse_amount(typed, "USD")


@given(st.integers(min_value=1, max_value=inbox.MAX_AMOUNT_MICROS))
def test_the_forms_amount_field_parses_back_to_the_amount(micros: int) -> None:
    field = inbox.amount_field(usd(micros))
    assert inbox.parse_amount(field, "USD").micros == micros


def test_a_policys_limits_read_as_text() -> None:
    policy = V.Policy(
        spend_caps=[V.SpendCap(limit=usd(500_000_000), window=V.SpendCap.WINDOW_ROLLING_24H)],
        max_cost_per_call=usd(100_000_000),
        run_spend_cap=usd(20_000_000),
        rate_limits=[V.RateLimit(limit=60, window=duration_pb2.Duration(seconds=60))],
        max_calls=1000,
        allowed_vendors=["openai", "anthropic"],
    )
    assert inbox.policy_limits(policy) == [
        "500.00 USD / rolling_24h",
        "100.00 USD a call",
        "20.00 USD a run",
        "60 calls / 60s",
        "1000 calls in all",
        "vendors: openai, anthropic",
    ]
    assert inbox.policy_limits(V.Policy()) == []


def test_a_template_view_tells_shipped_from_the_tenants() -> None:
    shipped = inbox.template_view(V.PolicyTemplate(name="policyTemplates/ci-agent"))
    own = inbox.template_view(
        V.PolicyTemplate(
            name="tenants/acme/policyTemplates/support",
            vendor_keys=[V.VendorKeyTemplate(vendor="stripe")],
        )
    )
    assert shipped.shipped and not own.shipped
    assert own.vendor_keys == [("stripe", [])]


def test_a_session_remembers_which_requests_it_showed_bounded() -> None:
    session = SessionStore(60, clock=lambda: 0.0).open("token")
    assert not session.was_shown("r1")
    session.mark_shown("r1")
    assert session.was_shown("r1")
    for n in range(MAX_SHOWN_REQUESTS):
        session.mark_shown(f"other-{n}")
    assert not session.was_shown("r1")  # the oldest is forgotten, the list stays bounded
    assert len(session.shown_requests) == MAX_SHOWN_REQUESTS
