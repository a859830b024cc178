"""Key secrets: "vk_" + 43 base62 characters (256 random bits) + a 6-character checksum.

The checksum lets a typo or a truncated paste be rejected without touching a store. Only an
HMAC-SHA-256 of the secret under a server pepper is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

from keyleash_core.auth import secret_hash

PREFIX = "vk_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 43  # 62**43 > 2**256
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
SECRET_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
_ALPHABET_SET = frozenset(ALPHABET)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def secret_from_bytes(random_bytes: bytes) -> str:
    """The secret for 32 random bytes."""
    if len(random_bytes) != 32:
        raise ValueError("a key secret needs exactly 32 random bytes")
    body = _base62(int.from_bytes(random_bytes, "big"), BODY_LENGTH)
    return PREFIX + body + _checksum(body)


def new_secret() -> str:
    return secret_from_bytes(secrets.token_bytes(32))


def derived_secret(pepper: bytes, *parts: str) -> str:
    """A secret derived from the pepper and an idempotency scope (caller, request_id).

    A retried MintKey with the same request_id must return the same secret, yet the secret is
    never stored: deriving it again is the only way to hand it out twice.
    """
    message = "\x1f".join(("keyleash-mint-v1", *parts)).encode("utf-8")
    return secret_from_bytes(hmac.new(pepper, message, hashlib.sha256).digest())


def is_well_formed(secret: str) -> bool:
    """Shape and checksum only: no store is consulted."""
    if len(secret) != SECRET_LENGTH or not secret.startswith(PREFIX):
        return False
    body, checksum = secret[3 : 3 + BODY_LENGTH], secret[3 + BODY_LENGTH :]
    if not _ALPHABET_SET.issuperset(body) or not _ALPHABET_SET.issuperset(checksum):
        return False
    return hmac.compare_digest(_checksum(body), checksum)


__all__ = ["derived_secret", "is_well_formed", "new_secret", "secret_from_bytes", "secret_hash"]
