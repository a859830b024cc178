"""Envelope encryption of connection secrets: AES-256-GCM under a per-secret data key, the data
key itself sealed by the master key (KEYLEASH_SECRETS_KEY).

Rotating the master key then means re-wrapping 60-byte data keys, never touching secrets, and a
leaked row is useless without the master key. The associated data binds a sealed secret to its
connection's resource name, so a ciphertext copied onto another row does not open.

Layout of a sealed blob (bytes): version (1) | master key id (8) | nonce (12) | wrapped data key
(32 + 16 tag) | nonce (12) | ciphertext + tag (16).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_BYTES = 8
_WRAPPED_BYTES = KEY_BYTES + 16
_HEADER = 1 + KEY_ID_BYTES


class SealingError(Exception):
    """A secret could not be sealed or opened (wrong master key, corrupted or foreign blob)."""


def parse_master_key(encoded: str) -> bytes:
    """The 32-byte master key from its base64 form; SealingError when it is not exactly that."""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SealingError("the secrets key must be base64") from None
    if len(raw) != KEY_BYTES:
        raise SealingError(f"the secrets key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def master_key_id(master: bytes) -> bytes:
    """A short, non-secret fingerprint naming which master key sealed a blob."""
    return hashlib.sha256(b"keyleash-secrets-key-id\x00" + master).digest()[:KEY_ID_BYTES]


def seal(master: bytes, plaintext: str, context: str) -> bytes:
    """`plaintext` encrypted under a fresh data key, bound to `context` (the resource name)."""
    data_key = AESGCM.generate_key(bit_length=256)
    aad = context.encode("utf-8")
    key_nonce, secret_nonce = os.urandom(NONCE_BYTES), os.urandom(NONCE_BYTES)
    wrapped = AESGCM(master).encrypt(key_nonce, data_key, aad)
    sealed = AESGCM(data_key).encrypt(secret_nonce, plaintext.encode("utf-8"), aad)
    return b"".join(
        (bytes([VERSION]), master_key_id(master), key_nonce, wrapped, secret_nonce, sealed)
    )


def open_sealed(master: bytes, blob: bytes, context: str) -> str:
    """The plaintext `seal` sealed, or SealingError; never says more than which check failed."""
    minimum = _HEADER + NONCE_BYTES + _WRAPPED_BYTES + NONCE_BYTES + 16
    if len(blob) < minimum or blob[0] != VERSION:
        raise SealingError("not a sealed secret of a known version")
    if blob[1:_HEADER] != master_key_id(master):
        raise SealingError("sealed under another secrets key")
    offset = _HEADER
    key_nonce = blob[offset : offset + NONCE_BYTES]
    offset += NONCE_BYTES
    wrapped = blob[offset : offset + _WRAPPED_BYTES]
    offset += _WRAPPED_BYTES
    secret_nonce = blob[offset : offset + NONCE_BYTES]
    sealed = blob[offset + NONCE_BYTES :]
    aad = context.encode("utf-8")
    try:
        data_key = AESGCM(master).decrypt(key_nonce, wrapped, aad)
        return AESGCM(data_key).decrypt(secret_nonce, sealed, aad).decode("utf-8")
    except InvalidTag:
        raise SealingError("the sealed secret does not authenticate") from None
