"""Page tokens of every List RPC: an opaque position bound to the filter it was issued for.

A token carries where the last page ended and a tag of the request's filter; a token presented
with another filter is refused (AIP-158: the other fields must match the first request's).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from keyleash_core.errors import InvalidArgument

Position = list[Any]


def filter_tag(*parts: object) -> str:
    """A short digest of a request's filter fields (anything JSON can render, in order)."""
    raw = json.dumps(parts, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode(position: Position, tag: str) -> str:
    raw = json.dumps({"p": position, "f": tag}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, tag: str) -> Position | None:
    """The position a token names (None for no token); INVALID_ARGUMENT if it is not one of
    ours or was issued for a different filter."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, issued_for = data["p"], data["f"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token", "not a token this service issued") from None
    if not isinstance(position, list):
        raise InvalidArgument("page_token", "not a token this service issued")
    if issued_for != tag:
        raise InvalidArgument("page_token", "was issued for a different filter")
    return position


def encode_time_position(time: datetime, last_id: str, tag: str) -> str:
    """A token for lists ordered by (time, id), the vault's keys and decisions."""
    return encode([time.isoformat(), last_id], tag)


def decode_time_position(token: str, tag: str) -> tuple[datetime, str] | None:
    found = decode(token, tag)
    if found is None:
        return None
    try:
        time, last_id = found
        return datetime.fromisoformat(str(time)), str(last_id)
    except (ValueError, TypeError):
        raise InvalidArgument("page_token", "not a token this service issued") from None


def newest_first(order_by: str, time_field: str) -> bool:
    """Whether an AIP-132 `order_by` of a time-ordered list asks for newest first: "" or
    "{time_field}" [asc] is oldest first, "{time_field} desc" newest first; anything else is
    INVALID_ARGUMENT."""
    words = order_by.lower().split()
    if not words:
        return False
    if words[0] == time_field and len(words) <= 2:
        direction = words[1] if len(words) == 2 else "asc"
        if direction in ("asc", "desc"):
            return direction == "desc"
    raise InvalidArgument("order_by", f'"{time_field}" or "{time_field} desc"')
