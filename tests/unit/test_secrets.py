from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault_service.domain import secrets


def test_new_secret_shape() -> None:
    secret = secrets.new_secret()
    assert secret.startswith("vk_") and len(secret) == secrets.SECRET_LENGTH
    assert secrets.is_well_formed(secret)


@given(st.binary(min_size=32, max_size=32))
def test_every_secret_round_trips(raw: bytes) -> None:
    assert secrets.is_well_formed(secrets.secret_from_bytes(raw))


@given(st.integers(min_value=3, max_value=secrets.SECRET_LENGTH - 1), st.sampled_from("0aZ"))
def test_a_one_character_typo_is_rejected(position: int, replacement: str) -> None:
    secret = secrets.secret_from_bytes(bytes(range(32)))
    if secret[position] == replacement:
        return
    typo = secret[:position] + replacement + secret[position + 1 :]
    assert not secrets.is_well_formed(typo)


@pytest.mark.parametrize("bad", ["", "vk_", "vk_short", "xx_" + "a" * 49, "vk_" + "!" * 49])
def test_malformed(bad: str) -> None:
    assert not secrets.is_well_formed(bad)


def test_hash_is_keyed_and_derivation_is_stable() -> None:
    secret = secrets.new_secret()
    assert secrets.secret_hash(b"pepper-one-123456", secret) != secrets.secret_hash(
        b"pepper-two-123456", secret
    )
    first = secrets.derived_secret(b"p" * 16, "admin:1", "req-1")
    assert first == secrets.derived_secret(b"p" * 16, "admin:1", "req-1")
    assert first != secrets.derived_secret(b"p" * 16, "admin:2", "req-1")
    assert secrets.is_well_formed(first)
