"""Envelope encryption of connection secrets (pure, no I/O)."""

from __future__ import annotations

import base64
import os

import pytest

from vault_service.domain.sealing import (
    SealingError,
    master_key_id,
    open_sealed,
    parse_master_key,
    seal,
)

MASTER = os.urandom(32)
NAME = "tenants/acme/connections/stripe-main"


def test_round_trip_and_no_plaintext_in_the_blob() -> None:
    secret = "sk_test_" + "x" * 40
    blob = seal(MASTER, secret, NAME)
    assert secret.encode() not in blob
    assert open_sealed(MASTER, blob, NAME) == secret


def test_each_seal_uses_fresh_randomness() -> None:
    assert seal(MASTER, "same", NAME) != seal(MASTER, "same", NAME)


@pytest.mark.parametrize(
    ("case", "master", "context", "mutate"),
    [
        ("other master key", os.urandom(32), NAME, None),
        ("other connection", MASTER, "tenants/acme/connections/other", None),
        ("flipped ciphertext bit", MASTER, NAME, -1),
        ("flipped wrapped-key bit", MASTER, NAME, 30),
    ],
)
def test_tampering_or_wrong_key_does_not_open(
    case: str, master: bytes, context: str, mutate: int | None
) -> None:
    blob = bytearray(seal(MASTER, "sk_test_abc", NAME))
    if mutate is not None:
        blob[mutate] ^= 0x01
    with pytest.raises(SealingError):
        open_sealed(master, bytes(blob), context)


@pytest.mark.parametrize("blob", [b"", b"\x02" + b"\x00" * 120, b"\x01short"])
def test_foreign_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(SealingError):
        open_sealed(MASTER, blob, NAME)


def test_master_key_parsing() -> None:
    encoded = base64.b64encode(MASTER).decode()
    assert parse_master_key(encoded + "\n") == MASTER
    assert len(master_key_id(MASTER)) == 8
    for bad in ("not base64!", base64.b64encode(b"short").decode(), ""):
        with pytest.raises(SealingError):
            parse_master_key(bad)
