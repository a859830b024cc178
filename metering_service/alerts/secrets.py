"""Signing secrets of subscriptions: the Standard Webhooks `whsec_` form, generated or checked,
and sealed at rest (AES-256-GCM under a key derived from the server pepper, bound to the
subscription's name) because signing needs the secret itself, not a hash."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyleash_core.errors import InvalidArgument

PREFIX = "whsec_"
NONCE_BYTES = 12


def generate_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(32)).decode()


def validate_secret(value: str) -> str:
    """A given secret must be whsec_ + base64 of 24 to 64 bytes; the message never echoes it."""
    if not value.startswith(PREFIX):
        raise InvalidArgument("signing_secret", "must start with whsec_")
    try:
        raw = base64.b64decode(value[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("signing_secret", "must be whsec_ followed by base64") from None
    if not 24 <= len(raw) <= 64:
        raise InvalidArgument("signing_secret", "must encode 24 to 64 bytes")
    return value


def _sealing_key(pepper: bytes) -> bytes:
    return hmac.new(pepper, b"keyleash-alert-signing-secrets", hashlib.sha256).digest()


def seal_secret(pepper: bytes, secret: str, name: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(_sealing_key(pepper)).encrypt(nonce, secret.encode(), name.encode())


def open_secret(pepper: bytes, sealed: bytes, name: str) -> str | None:
    """The secret, or None when the pepper changed or the row was tampered with."""
    try:
        plain = AESGCM(_sealing_key(pepper)).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], name.encode()
        )
    except (InvalidTag, ValueError):
        return None
    return plain.decode()
