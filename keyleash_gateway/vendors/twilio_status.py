"""Twilio status callbacks (pure): the callback URL the gateway asks Twilio to call, Twilio's
request signature, and the correction a final status implies.

Twilio's answer to a new message usually has no `price` yet, so the gateway charges the
estimate and asks Twilio (StatusCallback) to tell it when the message is final; the correction
(actual - estimate) is then a new billing event: the stream stays append-only.

Signature (twilio.com/docs/usage/security): base64 of HMAC-SHA1 under the account's Auth Token
of the full callback URL followed by every POST parameter, sorted by name, name then value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from keyleash_core.money import Money
from keyleash_gateway.currency import decimal_to_micros

CALLBACK_PATH = "/twilio/_keyleash/status"
# Statuses after which Twilio does not change a message's price any more.
FINAL = frozenset({"delivered", "undelivered", "failed", "read"})
# Statuses Twilio does not charge for when it reports no price.
UNCHARGED = frozenset({"failed", "undelivered"})


@dataclass(frozen=True)
class ChargedMessage:
    """What the gateway charged for one message, carried in the callback URL."""

    connection: str
    key_id: str
    charge_request_id: str
    estimate_micros: int
    agent_run_id: str


def callback_url(public_url: str, charged: ChargedMessage) -> str:
    query = urlencode(
        {
            "c": charged.connection,
            "k": charged.key_id,
            "r": charged.charge_request_id,
            "e": str(charged.estimate_micros),
            "run": charged.agent_run_id,
        },
        safe="/",  # names stay readable, and no client re-encodes them differently
    )
    return f"{public_url}{CALLBACK_PATH}?{query}"


def parse_callback_query(query: str) -> ChargedMessage | None:
    fields = dict(parse_qsl(query))
    try:
        return ChargedMessage(
            fields["c"], fields["k"], fields["r"], int(fields["e"]), fields.get("run", "")
        )
    except (KeyError, ValueError):
        return None


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(auth_token: str, url: str, params: Mapping[str, str], given: str) -> bool:
    return hmac.compare_digest(signature(auth_token, url, params), given.strip())


def correction(charged: ChargedMessage, status: str, message: Mapping[str, object]) -> Money | None:
    """actual - estimate once the message is final and its price known; None: nothing to do yet."""
    if status not in FINAL:
        return None
    price, unit = message.get("price"), message.get("price_unit")
    currency = unit.upper() if isinstance(unit, str) and len(unit) == 3 else "USD"
    if isinstance(price, str) and price.strip():
        try:
            actual = abs(decimal_to_micros(price))
        except ValueError:
            return None
    elif status in UNCHARGED:
        actual = 0
    else:
        return None
    delta = actual - charged.estimate_micros
    return Money(currency, delta) if delta else None
