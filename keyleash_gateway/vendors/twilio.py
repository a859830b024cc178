"""Twilio Programmable Messaging (api.twilio.com, form-encoded requests, JSON answers).

The SDK authenticates with HTTP Basic: username = the Account SID, password = the vault key.
Upstream the password becomes the connection's secret: an Auth Token, or "SKxxx:secret" (an API
key, which then replaces the username too).

Endpoint table (anything else is refused with 403):

- POST /2010-04-01/Accounts/{sid}/Messages.json: twilio.messages.write; estimate = segments of
  Body (GSM-7 or UCS-2) x the destination country's per-segment price (vendors/sms.py, table
  twilio-sms-2026-12); cost = the answer's `price` when present (Twilio reports it as a negative
  decimal), else the estimate; with KEYLEASH_GATEWAY_PUBLIC_URL set, Twilio's signed status
  callback later corrects it (vendors/twilio_status.py, keyleash_gateway/callbacks.py).
- GET /2010-04-01/Accounts/{sid}/Messages.json and .../Messages/{MessageSid}.json:
  twilio.messages.read; cost 0.

4xx answers cost 0 (the hold is released); 5xx are indeterminate (the hold stays). Attributes
for constraints: `to`, and `from` (the From number, or the MessagingServiceSid), so a key can be
held to `+1*` numbers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from keyleash_core.money import Money
from keyleash_gateway.currency import decimal_to_micros
from keyleash_gateway.vendors import sms
from keyleash_gateway.vendors.base import (
    BadRequestBody,
    Cost,
    Endpoint,
    UnknownEndpoint,
    form_fields,
    json_object,
    pass_through_meter,
    path_segments,
)

name = "twilio"
default_base_url = "https://api.twilio.com"


def _basic(headers: Mapping[str, str]) -> tuple[str, str] | None:
    scheme, _, encoded = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def vault_key(headers: Mapping[str, str]) -> str | None:
    credentials = _basic(headers)
    return credentials[1] or None if credentials else None


def upstream_auth(headers: Mapping[str, str], secret: str) -> dict[str, str]:
    username = (_basic(headers) or ("", ""))[0]
    pair = secret if ":" in secret else f"{username}:{secret}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def describe(method: str, path: str, query: str, content_type: str, body: bytes) -> Endpoint:
    parts = path_segments(path)
    if len(parts) < 4 or parts[:2] != ["2010-04-01", "Accounts"]:
        raise UnknownEndpoint(f"{method} {path}")
    rest = parts[3:]
    one_message = len(rest) == 2 and rest[0] == "Messages" and rest[1].endswith(".json")
    if method == "GET" and (rest == ["Messages.json"] or one_message):
        return Endpoint("messages.read", "twilio.messages.read", None)
    if method == "POST" and rest == ["Messages.json"]:
        return _create(form_fields(body))
    raise UnknownEndpoint(f"{method} {path}")


def _create(fields: Mapping[str, str]) -> Endpoint:
    to = fields.get("To", "")
    sender = fields.get("From", "") or fields.get("MessagingServiceSid", "")
    if not to.startswith("+") or not to[1:].isdigit() or not sender:
        raise BadRequestBody("To (an E.164 number) and From or MessagingServiceSid are required")
    micros = sms.segments(fields.get("Body", "")) * sms.segment_price(to)
    return Endpoint(
        "messages.create",
        "twilio.messages.write",
        Money("USD", micros),
        {"to": to, "from": sender},
        sms.PRICE_TABLE,
    )


def cost(endpoint: Endpoint, status: int, body: bytes) -> Cost | None:
    if status >= 500:
        return None
    if status >= 300 or endpoint.estimate is None:
        return Cost(Money("USD", 0), "vendor_response")
    answer = json_object(body)
    sid = str(answer.get("sid", ""))
    price, unit = answer.get("price"), answer.get("price_unit")
    if isinstance(price, str) and price.strip() and isinstance(unit, str) and len(unit) == 3:
        try:
            return Cost(Money(unit.upper(), abs(decimal_to_micros(price))), "vendor_response", sid)
        except ValueError:
            pass
    return Cost(endpoint.estimate, sms.PRICE_TABLE, sid)


stream_meter = pass_through_meter
