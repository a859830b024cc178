"""The Stripe vendor module: endpoint table, estimates in minor units, costs from answers."""

from __future__ import annotations

import json

import pytest

from keyleash_core.money import Money
from keyleash_gateway.currency import decimal_to_micros, minor_to_money
from keyleash_gateway.vendors import stripe
from keyleash_gateway.vendors.base import BadRequestBody, Endpoint, UnknownEndpoint

FORM = "application/x-www-form-urlencoded"

DESCRIBE = [
    # method, path,                         body,                                          name,                      scope,                          estimate,                  attributes
    (
        "POST",
        "/v1/charges",
        b"amount=2000&currency=usd&source=tok_visa",
        "charges.create",
        "stripe.charges.write",
        Money("USD", 20_000_000),
        {"currency": "usd"},
    ),
    (
        "POST",
        "/v1/charges",
        b"amount=500&currency=jpy&customer=cus_1",
        "charges.create",
        "stripe.charges.write",
        Money("JPY", 500_000_000),
        {"currency": "jpy", "customer": "cus_1"},
    ),
    (
        "POST",
        "/v1/charges",
        b"amount=1000&currency=kwd",
        "charges.create",
        "stripe.charges.write",
        Money("KWD", 1_000_000),
        {"currency": "kwd"},
    ),
    (
        "POST",
        "/v1/payment_intents",
        b"amount=1999&currency=eur&confirm=true",
        "payment_intents.create",
        "stripe.payment_intents.write",
        Money("EUR", 19_990_000),
        {"currency": "eur"},
    ),
    (
        "POST",
        "/v1/payment_intents/pi_1/confirm",
        b"",
        "payment_intents.confirm",
        "stripe.payment_intents.write",
        None,
        {},
    ),
    (
        "POST",
        "/v1/payment_intents/pi_1/capture",
        b"",
        "payment_intents.capture",
        "stripe.payment_intents.write",
        None,
        {},
    ),
    ("POST", "/v1/refunds", b"charge=ch_1", "refunds.create", "stripe.refunds.write", None, {}),
    (
        "POST",
        "/v1/customers",
        b"email=a%40b.c",
        "customers.create",
        "stripe.customers.write",
        None,
        {},
    ),
    ("GET", "/v1/charges/ch_1", b"", "charges.read", "stripe.charges.read", None, {}),
    ("GET", "/v1/customers", b"", "customers.read", "stripe.customers.read", None, {}),
    ("GET", "/v1/balance", b"", "balance.read", "stripe.balance.read", None, {}),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "name", "scope", "estimate", "attributes"), DESCRIBE
)
def test_describe(
    method: str,
    path: str,
    body: bytes,
    name: str,
    scope: str,
    estimate: Money | None,
    attributes: dict[str, str],
) -> None:
    endpoint = stripe.describe(method, path, "", FORM, body)
    assert (endpoint.name, endpoint.scope, endpoint.estimate, dict(endpoint.attributes)) == (
        name,
        scope,
        estimate,
        attributes,
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/customers/cus_1"),
        ("POST", "/v1/transfers"),
        ("POST", "/v2/core/events"),
        ("GET", "/v1/charges/ch_1/refunds/re_1"),
        ("POST", "/"),
    ],
)
def test_unknown_endpoints_are_refused(method: str, path: str) -> None:
    with pytest.raises(UnknownEndpoint):
        stripe.describe(method, path, "", FORM, b"")


@pytest.mark.parametrize(
    "body",
    [
        b"currency=usd",
        b"amount=-5&currency=usd",
        b"amount=12.5&currency=usd",
        b"amount=100",
        b"amount=100&currency=dollars",
        b"\xff\xfe",
    ],
)
def test_charges_need_an_amount_and_currency(body: bytes) -> None:
    with pytest.raises(BadRequestBody):
        stripe.describe("POST", "/v1/charges", "", FORM, body)


CHARGE = Endpoint("charges.create", "stripe.charges.write", Money("USD", 20_000_000))
INTENT = Endpoint(
    "payment_intents.create", "stripe.payment_intents.write", Money("JPY", 500_000_000)
)
REFUND = Endpoint("refunds.create", "stripe.refunds.write", None)
CAPTURE = Endpoint("payment_intents.capture", "stripe.payment_intents.write", None)


def _answer(**fields: object) -> bytes:
    return json.dumps(fields).encode()


COSTS = [
    # endpoint, status, answer,                                                                  amount (None: unknown),     vendor id
    (
        CHARGE,
        200,
        _answer(id="ch_1", object="charge", amount=2000, currency="usd", status="succeeded"),
        Money("USD", 20_000_000),
        "ch_1",
    ),
    (
        CHARGE,
        200,
        _answer(id="ch_2", amount=1500, currency="usd", status="pending"),
        Money("USD", 15_000_000),
        "ch_2",
    ),
    (
        CHARGE,
        200,
        _answer(id="ch_3", amount=2000, currency="usd", status="failed"),
        Money("USD", 0),
        "ch_3",
    ),
    (
        CHARGE,
        402,
        _answer(error={"type": "card_error", "code": "card_declined"}),
        Money("USD", 0),
        "",
    ),
    (CHARGE, 400, b"not json", Money("USD", 0), ""),
    (CHARGE, 500, _answer(error={"type": "api_error"}), None, ""),
    (CHARGE, 503, b"", None, ""),
    (
        INTENT,
        200,
        _answer(id="pi_1", amount=500, currency="jpy", status="succeeded"),
        Money("JPY", 500_000_000),
        "pi_1",
    ),
    (
        INTENT,
        200,
        _answer(id="pi_2", amount=500, currency="jpy", status="requires_capture"),
        Money("JPY", 500_000_000),
        "pi_2",
    ),
    (
        INTENT,
        200,
        _answer(id="pi_3", amount=500, currency="jpy", status="requires_payment_method"),
        Money("JPY", 0),
        "pi_3",
    ),
    (
        REFUND,
        200,
        _answer(id="re_1", object="refund", amount=700, currency="usd", status="succeeded"),
        Money("USD", -7_000_000),
        "re_1",
    ),
    (
        REFUND,
        200,
        _answer(id="re_2", amount=700, currency="usd", status="failed"),
        Money("USD", 0),
        "re_2",
    ),
    (
        CAPTURE,
        200,
        _answer(id="pi_2", amount=500, currency="jpy", status="succeeded"),
        Money("JPY", 0),
        "pi_2",
    ),
]


@pytest.mark.parametrize(("endpoint", "status", "body", "amount", "vendor_id"), COSTS)
def test_cost(
    endpoint: Endpoint, status: int, body: bytes, amount: Money | None, vendor_id: str
) -> None:
    cost = stripe.cost(endpoint, status, body)
    if amount is None:
        assert cost is None
        return
    assert cost is not None
    assert (cost.amount, cost.vendor_request_id, cost.source) == (
        amount,
        vendor_id,
        "vendor_response",
    )


def test_credentials_placement() -> None:
    assert stripe.vault_key({"Authorization": "Bearer vk_abc"}) == "vk_abc"
    assert stripe.vault_key({"Authorization": "Basic dms6"}) is None
    assert stripe.vault_key({}) is None
    assert stripe.upstream_auth({}, "sk_test_1") == {"Authorization": "Bearer sk_test_1"}


@pytest.mark.parametrize(
    ("minor", "currency", "micros"),
    [
        (2000, "usd", 20_000_000),
        (500, "JPY", 500_000_000),
        (1, "krw", 1_000_000),
        (1000, "bhd", 1_000_000),
        (1, "eur", 10_000),
    ],
)
def test_minor_units(minor: int, currency: str, micros: int) -> None:
    assert minor_to_money(minor, currency) == Money(currency.upper(), micros)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0.0075", 7500),
        ("-0.00750", -7500),
        ("1", 1_000_000),
        ("12.3456789", 12_345_678),
        (".5", 500_000),
    ],
)
def test_decimal_to_micros(text: str, micros: int) -> None:
    assert decimal_to_micros(text) == micros


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "-", "1e5"])
def test_decimal_to_micros_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        decimal_to_micros(text)
