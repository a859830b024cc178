"""The Resend vendor module: recipients x the per-email rate, attributes, costs."""

from __future__ import annotations

import json

import pytest

from keyleash_core.money import Money
from keyleash_gateway.vendors import resend
from keyleash_gateway.vendors.base import BadRequestBody, UnknownEndpoint

RATE = resend.PER_RECIPIENT_MICROS


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


DESCRIBE = [
    # path,            body,                                                                                   recipients, from,            domains
    (
        "/emails",
        {"from": "Acme <ops@acme.com>", "to": "a@x.io", "subject": "hi"},
        1,
        "ops@acme.com",
        "x.io",
    ),
    (
        "/emails",
        {"from": "ops@acme.com", "to": ["a@x.io", "b@Y.io"], "cc": "c@x.io", "bcc": ["d@z.io"]},
        4,
        "ops@acme.com",
        "x.io\ny.io\nz.io",
    ),
    (
        "/emails/batch",
        [
            {"from": "ops@acme.com", "to": "a@x.io"},
            {"from": "ops@acme.com", "to": ["b@x.io", "c@x.io"]},
        ],
        3,
        "ops@acme.com",
        "x.io",
    ),
]


@pytest.mark.parametrize(("path", "payload", "recipients", "sender", "domains"), DESCRIBE)
def test_describe(path: str, payload: object, recipients: int, sender: str, domains: str) -> None:
    endpoint = resend.describe("POST", path, "", "application/json", _body(payload))
    assert endpoint.scope == "resend.emails.write"
    assert endpoint.estimate == Money("USD", RATE * recipients)
    assert dict(endpoint.attributes) == {"from": sender, "recipient_domain": domains}
    assert endpoint.cost_source == resend.PRICE_TABLE


@pytest.mark.parametrize(
    "payload",
    [
        {"to": "a@x.io"},
        {"from": "ops@acme.com"},
        {"from": "ops@acme.com", "to": "not-an-address"},
        {"from": "ops@acme.com", "to": 5},
        {"from": "ops@acme.com", "to": [f"u{i}@x.io" for i in range(51)]},
        [],
        "text",
        [{"from": "a@acme.com", "to": "x@x.io"}, {"from": "b@acme.com", "to": "x@x.io"}],
    ],
)
def test_bad_emails_are_refused(payload: object) -> None:
    path = "/emails/batch" if isinstance(payload, list) else "/emails"
    with pytest.raises(BadRequestBody):
        resend.describe("POST", path, "", "application/json", _body(payload))


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/emails/e_1"), ("POST", "/domains"), ("POST", "/emails/e_1/cancel")],
)
def test_unknown_endpoints(method: str, path: str) -> None:
    with pytest.raises(UnknownEndpoint):
        resend.describe(method, path, "", "application/json", b"{}")


def test_reads_and_costs() -> None:
    assert resend.describe("GET", "/emails/e_1", "", "", b"").scope == "resend.emails.read"
    sent = resend.describe(
        "POST", "/emails", "", "", _body({"from": "a@acme.com", "to": ["x@x.io", "y@x.io"]})
    )
    cost = resend.cost(sent, 200, _body({"id": "e_1"}))
    assert cost is not None and (cost.amount, cost.vendor_request_id) == (
        Money("USD", 2 * RATE),
        "e_1",
    )
    batch = resend.cost(sent, 200, _body({"data": [{"id": "e_2"}, {"id": "e_3"}]}))
    assert batch is not None and batch.vendor_request_id == "e_2"
    rejected = resend.cost(sent, 422, _body({"statusCode": 422, "name": "validation_error"}))
    assert rejected is not None and rejected.amount == Money("USD", 0)
    assert resend.cost(sent, 500, b"") is None
