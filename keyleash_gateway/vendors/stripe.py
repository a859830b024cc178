"""Stripe (api.stripe.com, form-encoded requests, JSON answers, amounts in minor units).

The SDK sends `Authorization: Bearer <api key>`: the vault key goes there, the connection's
secret key goes upstream. Endpoint table (anything else is refused with 403):

- POST /v1/charges: stripe.charges.write; estimate amount+currency; cost = amount when the
  answer's status is succeeded or pending, else 0.
- POST /v1/payment_intents: stripe.payment_intents.write; estimate amount+currency; cost = amount
  when succeeded, requires_capture or processing, else 0 (an unconfirmed intent moved nothing).
- POST /v1/payment_intents/{id}/confirm: same scope; the request has no amount, so the gateway
  first reads the intent (GET /v1/payment_intents/{id}, with the connection's secret, once the
  key is known to be usable) and holds its amount+currency, with its customer and currency as
  attributes; cost as for create. An intent Stripe does not return is Stripe's own answer.
- POST /v1/payment_intents/{id}/capture: same scope; cost 0 (counted at requires_capture).
- POST /v1/refunds: stripe.refunds.write; no estimate; cost = -amount (a negative charge) unless
  the refund failed or was canceled.
- POST /v1/customers: stripe.customers.write; cost 0.
- GET /v1/{charges,payment_intents,customers,refunds}[/{id}] and GET /v1/balance:
  stripe.{resource}.read; cost 0.

Answers of 4xx are definite failures (cost 0, the hold is released); 5xx are indeterminate
(Stripe's own advice: retry with the same Idempotency-Key), so the hold stays until a retry
settles it. Attributes for constraints: `customer`, `currency` (lowercase, as Stripe takes it).
"""

from __future__ import annotations

from collections.abc import Mapping

from keyleash_core.money import Money
from keyleash_gateway.currency import minor_to_money
from keyleash_gateway.vendors.base import (
    BadRequestBody,
    Cost,
    Endpoint,
    Lookup,
    UnknownEndpoint,
    bearer,
    form_fields,
    json_object,
    pass_through_meter,
    path_segments,
)

name = "stripe"
default_base_url = "https://api.stripe.com"

_READABLE = ("charges", "payment_intents", "customers", "refunds")
_CHARGED_CHARGE = ("succeeded", "pending")
_CHARGED_INTENT = ("succeeded", "requires_capture", "processing")
_NO_REFUND = ("failed", "canceled")


def vault_key(headers: Mapping[str, str]) -> str | None:
    return bearer(headers)


def upstream_auth(headers: Mapping[str, str], secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def describe(method: str, path: str, query: str, content_type: str, body: bytes) -> Endpoint:
    parts = path_segments(path)
    if len(parts) < 2 or parts[0] != "v1":
        raise UnknownEndpoint(f"{method} {path}")
    resource, rest = parts[1], parts[2:]
    if method == "GET":
        return _read(resource, rest, method, path)
    if method != "POST":
        raise UnknownEndpoint(f"{method} {path}")
    fields = form_fields(body)
    attributes = {k: fields[k] for k in ("customer", "currency") if fields.get(k)}
    if resource == "charges" and not rest:
        return Endpoint("charges.create", "stripe.charges.write", _amount(fields), attributes)
    if resource == "payment_intents" and not rest:
        return Endpoint(
            "payment_intents.create", "stripe.payment_intents.write", _amount(fields), attributes
        )
    if resource == "payment_intents" and len(rest) == 2 and rest[1] == "confirm":
        return Endpoint(
            "payment_intents.confirm",
            "stripe.payment_intents.write",
            None,
            lookup=Lookup(f"/v1/payment_intents/{rest[0]}", _confirmed_intent),
        )
    if resource == "payment_intents" and len(rest) == 2 and rest[1] == "capture":
        return Endpoint("payment_intents.capture", "stripe.payment_intents.write", None, {})
    if resource == "refunds" and not rest:
        return Endpoint("refunds.create", "stripe.refunds.write", None, attributes)
    if resource == "customers" and not rest:
        return Endpoint("customers.create", "stripe.customers.write", None, attributes)
    raise UnknownEndpoint(f"{method} {path}")


def _confirmed_intent(body: bytes) -> Endpoint:
    """The confirm of the PaymentIntent Stripe answered with: its amount is what it will move."""
    intent = json_object(body)
    amount, currency = intent.get("amount"), intent.get("currency")
    if not isinstance(amount, int) or amount < 0 or not isinstance(currency, str):
        raise BadRequestBody("the PaymentIntent to confirm has no amount and currency")
    attributes = {"currency": currency}
    customer = intent.get("customer")
    if isinstance(customer, str) and customer:
        attributes["customer"] = customer
    return Endpoint(
        "payment_intents.confirm",
        "stripe.payment_intents.write",
        minor_to_money(amount, currency),
        attributes,
    )


def _read(resource: str, rest: list[str], method: str, path: str) -> Endpoint:
    if resource == "balance" and not rest:
        return Endpoint("balance.read", "stripe.balance.read", None)
    if resource in _READABLE and len(rest) <= 1:
        return Endpoint(f"{resource}.read", f"stripe.{resource}.read", None)
    raise UnknownEndpoint(f"{method} {path}")


def _amount(fields: Mapping[str, str]) -> Money:
    raw, currency = fields.get("amount", ""), fields.get("currency", "")
    if not raw.isdigit() or len(currency) != 3 or not currency.isalpha():
        raise BadRequestBody("amount (a positive integer in minor units) and currency are required")
    return minor_to_money(int(raw), currency)


def cost(endpoint: Endpoint, status: int, body: bytes) -> Cost | None:
    if status >= 500:
        return None
    answer = json_object(body)
    object_id = str(answer.get("id", "")) if status < 300 else ""
    charged = _charged(endpoint.name, answer) if status < 300 else None
    return Cost(charged or _zero(endpoint, answer), "vendor_response", object_id)


def _charged(endpoint_name: str, answer: Mapping[str, object]) -> Money | None:
    """The amount a successful answer moved (negative for a refund), None when it moved none."""
    state, amount, currency = answer.get("status"), answer.get("amount"), answer.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        return None
    money = minor_to_money(amount, currency)
    if endpoint_name == "charges.create" and state in _CHARGED_CHARGE:
        return money
    if endpoint_name in ("payment_intents.create", "payment_intents.confirm"):
        return money if state in _CHARGED_INTENT else None
    if endpoint_name == "refunds.create" and state not in _NO_REFUND:
        return Money(money.currency, -money.micros)
    return None


def _zero(endpoint: Endpoint, answer: Mapping[str, object]) -> Money:
    """Zero in the estimate's currency (so the hold releases in the same currency)."""
    if endpoint.estimate is not None:
        return Money(endpoint.estimate.currency, 0)
    currency = answer.get("currency")
    return Money(currency.upper() if isinstance(currency, str) else "USD", 0)


stream_meter = pass_through_meter
