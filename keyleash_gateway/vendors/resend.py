"""Resend (api.resend.com, JSON). The SDK sends `Authorization: Bearer <api key>`.

Endpoint table (anything else is refused with 403):

- POST /emails: resend.emails.write; estimate and cost = PER_RECIPIENT_MICROS x recipients
  (to + cc + bcc), from price table PRICE_TABLE.
- POST /emails/batch: resend.emails.write; the same, summed over the batch.
- GET /emails/{id}: resend.emails.read; cost 0.

Resend's answer carries no price, so a 2xx is charged the estimate; 4xx cost 0 (the hold is
released); 5xx are indeterminate (the hold stays). Attributes for constraints: `from` (the
sender address) and `recipient_domain` (every distinct recipient domain, one per line), so a key
can be held to `*@acme.com` senders or to recipients at `acme.com`.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from keyleash_core.money import Money
from keyleash_gateway.vendors.base import (
    BadRequestBody,
    Cost,
    Endpoint,
    UnknownEndpoint,
    bearer,
    json_body,
    json_object,
    pass_through_meter,
    path_segments,
)

name = "resend"
default_base_url = "https://api.resend.com"

# Versioned like the LLM price table: change the version with the numbers.
PRICE_TABLE = "resend-2026-12"
# Pay-as-you-go overage of the Pro plan: 0.90 USD per 1,000 emails.
PER_RECIPIENT_MICROS = 900
MAX_RECIPIENTS = 50  # Resend's own limit per email


def vault_key(headers: Mapping[str, str]) -> str | None:
    return bearer(headers)


def upstream_auth(headers: Mapping[str, str], secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def describe(method: str, path: str, query: str, content_type: str, body: bytes) -> Endpoint:
    parts = path_segments(path)
    if method == "GET" and len(parts) == 2 and parts[0] == "emails":
        return Endpoint("emails.read", "resend.emails.read", None)
    if method != "POST" or parts not in (["emails"], ["emails", "batch"]):
        raise UnknownEndpoint(f"{method} {path}")
    payload = json_body(body)
    emails = payload if parts == ["emails", "batch"] else [payload]
    if not isinstance(emails, list) or not emails or not all(isinstance(e, dict) for e in emails):
        raise BadRequestBody("an email object (or, for /emails/batch, a list of them)")
    senders: set[str] = set()
    domains: set[str] = set()
    recipients = 0
    for email in emails:
        addresses = _recipients(email)
        recipients += len(addresses)
        domains.update(a.rpartition("@")[2].lower() for a in addresses)
        senders.add(_address(email.get("from")))
    if len(senders) != 1 or "" in senders:
        raise BadRequestBody("`from` is required (one sender per request)")
    attributes = {"from": senders.pop(), "recipient_domain": "\n".join(sorted(domains))}
    estimate = Money("USD", PER_RECIPIENT_MICROS * recipients)
    endpoint_name = "emails.batch" if len(parts) == 2 else "emails.send"
    return Endpoint(endpoint_name, "resend.emails.write", estimate, attributes, PRICE_TABLE)


def _address(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    address = parseaddr(value)[1]
    return address.lower() if "@" in address else ""


def _recipients(email: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for field in ("to", "cc", "bcc"):
        value = email.get(field)
        values = [value] if isinstance(value, str) else value or []
        if not isinstance(values, list):
            raise BadRequestBody(f"`{field}` must be an address or a list of addresses")
        for item in values:
            address = _address(item)
            if not address:
                raise BadRequestBody(f"`{field}` holds something that is not an email address")
            found.append(address)
    if not found or len(found) > MAX_RECIPIENTS:
        raise BadRequestBody(f"between 1 and {MAX_RECIPIENTS} recipients per email")
    return found


def cost(endpoint: Endpoint, status: int, body: bytes) -> Cost | None:
    if status >= 500:
        return None
    if status >= 300 or endpoint.estimate is None:
        return Cost(Money("USD", 0), "vendor_response")
    answer = json_object(body)
    sent_id = answer.get("id")
    if not sent_id and isinstance(answer.get("data"), list) and answer["data"]:
        first = answer["data"][0]
        sent_id = first.get("id") if isinstance(first, dict) else ""
    return Cost(endpoint.estimate, PRICE_TABLE, str(sent_id or ""))


stream_meter = pass_through_meter
