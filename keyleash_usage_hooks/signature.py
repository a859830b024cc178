"""Standard Webhooks verification of one delivery (pure; the caller passes the time).

The `standardwebhooks` package computes the expected signature (it is the reference); the checks
around it are ours so that each failure has its own answer: headers missing or malformed and a
timestamp outside the replay window are 400, a signature that does not match is 401. The window
is checked only once the signature matched, so an unsigned request learns nothing from it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

MAX_ID_LENGTH = 256


class DeliveryRefused(Exception):
    """A delivery that is not accepted; `status` is the HTTP answer."""

    status = 400
    code = "INVALID_REQUEST"


class HeadersInvalid(DeliveryRefused):
    """webhook-id / webhook-timestamp / webhook-signature missing or malformed."""


class SignatureInvalid(DeliveryRefused):
    status = 401
    code = "INVALID_SIGNATURE"


class OutsideReplayWindow(DeliveryRefused):
    code = "TIMESTAMP_OUT_OF_WINDOW"


@dataclass(frozen=True)
class Delivery:
    """The signed parts of a request."""

    webhook_id: str
    timestamp: int
    signatures: tuple[bytes, ...]  # the v1 signatures offered (others are ignored)
    text: str  # the body, decoded as UTF-8


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    webhook_id = headers.get("webhook-id", "").strip()
    stamp = headers.get("webhook-timestamp", "").strip()
    offered = headers.get("webhook-signature", "").strip()
    if not webhook_id or not stamp or not offered:
        raise HeadersInvalid("webhook-id, webhook-timestamp and webhook-signature are required")
    if len(webhook_id) > MAX_ID_LENGTH:
        raise HeadersInvalid(f"webhook-id is limited to {MAX_ID_LENGTH} characters")
    if not stamp.isdigit() or len(stamp) > 12:
        raise HeadersInvalid("webhook-timestamp must be integer seconds since the epoch")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HeadersInvalid("the body must be UTF-8 JSON") from None
    return Delivery(webhook_id, int(stamp), _v1_signatures(offered), text)


def _v1_signatures(header: str) -> tuple[bytes, ...]:
    found = []
    for part in header.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue  # a malformed one cannot match; the others may
    return tuple(found)


def verify(delivery: Delivery, secrets: Sequence[str], now_s: int, tolerance_s: int) -> None:
    """Raises SignatureInvalid unless one secret signed it, then OutsideReplayWindow."""
    if not any(_signed_by(delivery, secret) for secret in secrets):
        raise SignatureInvalid("no webhook-signature matches the tenant's signing secret")
    if abs(now_s - delivery.timestamp) > tolerance_s:
        raise OutsideReplayWindow(
            f"webhook-timestamp is more than {tolerance_s} s from now; sign it again"
        )


def _signed_by(delivery: Delivery, secret: str) -> bool:
    when = datetime.fromtimestamp(delivery.timestamp, tz=UTC)
    expected = Webhook(secret).sign(delivery.webhook_id, when, delivery.text)
    digest = base64.b64decode(expected.partition(",")[2])
    matched = False
    for offered in delivery.signatures:  # every one compared: timing says nothing
        matched |= hmac.compare_digest(digest, offered)
    return matched
