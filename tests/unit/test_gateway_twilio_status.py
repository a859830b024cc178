"""Twilio status callbacks (pure): the signature (checked against the official SDK's validator),
the callback URL round trip, and the correction a final status implies."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from keyleash_core.money import Money
from keyleash_gateway.vendors.twilio_status import (
    ChargedMessage,
    callback_url,
    correction,
    parse_callback_query,
    signature,
    signature_valid,
)

CHARGED = ChargedMessage("tenants/acme/connections/tw", "k_1", "gw-abc-charge", 8_300, "run 1")


def test_signature_matches_twilios_own_validator() -> None:
    url = callback_url("https://gw.example.test", CHARGED)
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+14155550100"}
    expected = RequestValidator("auth-token").compute_signature(url, params)
    assert signature("auth-token", url, params) == expected
    assert signature_valid("auth-token", url, params, expected)
    assert not signature_valid("other-token", url, params, expected)
    assert not signature_valid("auth-token", url, params | {"MessageStatus": "failed"}, expected)


def test_callback_url_round_trip() -> None:
    url = callback_url("https://gw.example.test", CHARGED)
    assert parse_callback_query(url.partition("?")[2]) == CHARGED
    assert parse_callback_query("c=x&k=y") is None
    assert parse_callback_query("c=x&k=y&r=z&e=notanumber") is None


CORRECTIONS = [
    # status,       message answer,                                   correction
    ("delivered", {"price": "-0.01580", "price_unit": "USD"}, Money("USD", 7_500)),
    ("delivered", {"price": "-0.00830", "price_unit": "USD"}, None),  # the estimate was right
    ("delivered", {"price": "-0.00500", "price_unit": "usd"}, Money("USD", -3_300)),
    ("delivered", {"price": None}, None),  # not known yet
    ("failed", {"price": None}, Money("USD", -8_300)),
    ("undelivered", {"price": "-0.00830", "price_unit": "USD"}, None),
    ("sent", {"price": "-0.01580", "price_unit": "USD"}, None),  # not final
    ("queued", {}, None),
    ("delivered", {"price": "garbage", "price_unit": "USD"}, None),
]


@pytest.mark.parametrize(("status", "message", "expected"), CORRECTIONS)
def test_correction(status: str, message: dict[str, object], expected: Money | None) -> None:
    assert correction(CHARGED, status, message) == expected
