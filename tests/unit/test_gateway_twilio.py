"""Twilio: SMS segments (GSM-7 vs UCS-2), per-country prices, the endpoint table, costs."""

from __future__ import annotations

import base64
import json

import pytest

from keyleash_core.money import Money
from keyleash_gateway.vendors import sms, twilio
from keyleash_gateway.vendors.base import BadRequestBody, UnknownEndpoint

SEGMENTS = [
    ("", 1),
    ("hello", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("€" * 80, 1),  # extension characters take two septets: 160
    ("€" * 81, 2),
    ("ü" * 160, 1),  # ü is in the GSM-7 basic table
    ("é" * 70 + "ł", 2),  # ł is not: the whole text is UCS-2, 71 units
    ("ł" * 70, 1),
    ("😀" * 35, 1),  # surrogate pairs: two UTF-16 units each
    ("😀" * 36, 2),
    ("ł" * 134, 2),
    ("ł" * 135, 3),
]


@pytest.mark.parametrize(("text", "count"), SEGMENTS)
def test_segments(text: str, count: int) -> None:
    assert sms.segments(text) == count


@pytest.mark.parametrize(
    ("number", "price"),
    [
        ("+14155550100", 8_300),
        ("+447700900123", 52_400),
        ("+4915112345678", 98_300),
        ("+999123", sms.DEFAULT_SEGMENT_PRICE),
    ],
)
def test_segment_prices(number: str, price: int) -> None:
    assert sms.segment_price(number) == price


PATH = "/2010-04-01/Accounts/AC123/Messages.json"


def test_describe_a_message() -> None:
    body = b"To=%2B447700900123&From=%2B15005550006&Body=" + b"a" * 200
    endpoint = twilio.describe("POST", PATH, "", "application/x-www-form-urlencoded", body)
    assert endpoint.scope == "twilio.messages.write"
    assert endpoint.estimate == Money("USD", 2 * 52_400)
    assert dict(endpoint.attributes) == {"to": "+447700900123", "from": "+15005550006"}
    service = twilio.describe(
        "POST", PATH, "", "", b"To=%2B14155550100&MessagingServiceSid=MG1&Body=hi"
    )
    assert service.attributes["from"] == "MG1"


@pytest.mark.parametrize(
    "body",
    [
        b"From=%2B1500&Body=hi",
        b"To=4155550100&From=%2B1500",
        b"To=%2B1415555abc&From=x",
        b"To=%2B14155550100&Body=hi",
    ],
)
def test_bad_messages(body: bytes) -> None:
    with pytest.raises(BadRequestBody):
        twilio.describe("POST", PATH, "", "", body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/2010-04-01/Accounts/AC1/Calls.json"),
        ("DELETE", "/2010-04-01/Accounts/AC1/Messages/SM1.json"),
        ("POST", "/v1/Services"),
        ("POST", "/2010-04-01/Accounts/AC1/Messages/SM1.json"),
    ],
)
def test_unknown_endpoints(method: str, path: str) -> None:
    with pytest.raises(UnknownEndpoint):
        twilio.describe(method, path, "", "", b"")


def test_reads() -> None:
    assert twilio.describe("GET", PATH, "", "", b"").scope == "twilio.messages.read"
    assert (
        twilio.describe("GET", "/2010-04-01/Accounts/AC1/Messages/SM1.json", "", "", b"").scope
        == "twilio.messages.read"
    )


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_credentials() -> None:
    assert twilio.vault_key(_basic("AC123", "vk_abc")) == "vk_abc"
    assert twilio.vault_key({"Authorization": "Bearer vk_abc"}) is None
    assert twilio.vault_key({"Authorization": "Basic !!!"}) is None
    assert twilio.upstream_auth(_basic("AC123", "vk_abc"), "token") == _basic("AC123", "token")
    assert twilio.upstream_auth(_basic("AC123", "vk_abc"), "SK9:apisecret") == _basic(
        "SK9", "apisecret"
    )


def test_costs() -> None:
    endpoint = twilio.describe("POST", PATH, "", "", b"To=%2B14155550100&From=%2B1500&Body=hi")
    priced = twilio.cost(
        endpoint, 201, json.dumps({"sid": "SM1", "price": "-0.00790", "price_unit": "USD"}).encode()
    )
    assert priced is not None and (priced.amount, priced.source, priced.vendor_request_id) == (
        Money("USD", 7_900),
        "vendor_response",
        "SM1",
    )
    pending = twilio.cost(
        endpoint, 201, json.dumps({"sid": "SM2", "price": None, "price_unit": "USD"}).encode()
    )
    assert pending is not None and (pending.amount, pending.source) == (
        Money("USD", 8_300),
        sms.PRICE_TABLE,
    )
    failed = twilio.cost(
        endpoint, 400, json.dumps({"code": 21211, "message": "invalid To"}).encode()
    )
    assert failed is not None and failed.amount.micros == 0
    assert twilio.cost(endpoint, 503, b"") is None
