"""Signed one-click approval links: a token naming one approval request, one action (approve or
deny) and an expiry, signed with HMAC-SHA-256 under a key derived from the server pepper.

Pure: the caller passes the time. Both services hold the pepper, so the vault (the CLI, the
RPCs) and the alert scanner can mint links the vault accepts. A token works once: the vault
records the SHA-256 of every token it accepted, and a request is decided only once anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "kla1"
DEFAULT_LINK_TTL_MS = 24 * 3600 * 1000
_KEY_CONTEXT = b"keyleash approval links v1"


class LinkAction(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class LinkRefused(Exception):
    """The token is not a valid, unexpired link for what it is presented for."""


@dataclass(frozen=True)
class LinkClaim:
    approval_name: str
    action: LinkAction
    expire_ms: int


def link_key(pepper: bytes) -> bytes:
    """The signing key: derived, so a link signature never reveals anything about key hashes."""
    return hmac.digest(pepper, _KEY_CONTEXT, "sha256")


def sign_link(
    pepper: bytes, approval_name: str, action: LinkAction, expire_ms: int, nonce: str = ""
) -> str:
    """A link token. `nonce` (default: random) makes it unique; an alert passes its event id,
    so every retried delivery of one alert carries the same links."""
    payload = _b64(
        json.dumps(
            [approval_name, action.value, expire_ms, nonce or secrets.token_hex(8)],
            separators=(",", ":"),
        ).encode()
    )
    return f"{TOKEN_PREFIX}.{payload}.{_b64(_mac(pepper, payload))}"


def verify_link(pepper: bytes, token: str, now_ms: int) -> LinkClaim:
    """The claim of a well-signed, unexpired token; LinkRefused otherwise."""
    payload, _, signature = token.partition(".")[2].partition(".")
    claim = peek_link(token)
    try:
        given = _unb64(signature)
    except ValueError:
        given = b""
    if claim is None or not signature:
        raise LinkRefused("not an approval link")
    if not hmac.compare_digest(given, _mac(pepper, payload)):
        raise LinkRefused("the link's signature does not verify")
    if now_ms >= claim.expire_ms:
        raise LinkRefused("the link has expired")
    return claim


def peek_link(token: str) -> LinkClaim | None:
    """What a token claims, UNVERIFIED (for showing which request a link is about, and for
    naming the request when passing the token on); None when it is not shaped like one."""
    prefix, _, rest = token.partition(".")
    payload = rest.partition(".")[0]
    if prefix != TOKEN_PREFIX or not payload:
        return None
    try:
        name, action, expire_ms, _nonce = json.loads(_unb64(payload))
        return LinkClaim(str(name), LinkAction(action), int(expire_ms))
    except (ValueError, TypeError):
        return None


def token_digest(token: str) -> bytes:
    """What the vault stores of a used token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).digest()


def _mac(pepper: bytes, payload: str) -> bytes:
    return hmac.digest(link_key(pepper), payload.encode(), "sha256")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
