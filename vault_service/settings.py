"""Vault settings, read once from KEYLEASH_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import (
    SettingsError,
    StoreSettings,
    env_bool,
    env_float,
    env_int,
    env_str,
)
from vault_service.domain.sealing import SealingError, parse_master_key


@dataclass(frozen=True)
class VaultSettings:
    """Everything the Vault service is configured with."""

    stores: StoreSettings
    listen: str
    max_key_depth: int
    default_ttl_seconds: int
    max_ttl_seconds: int
    audit_enabled: bool
    audit_drain: bool
    audit_batch_size: int
    audit_max_stream_length: int
    audit_retention_days: int
    # No decision is made while the tenant's oldest undrained audit entry is older than this:
    # so a Redis loss can only forget the decisions of the last audit_max_lag_ms (RELIABILITY.md).
    audit_max_lag_ms: int
    # Master key sealing connection secrets (KEYLEASH_SECRETS_KEY[_FILE]); None: connections off.
    secrets_key: bytes | None = None
    # How often pending approval requests past their expiry are recorded expired (0: never; a
    # request read after its expiry is recorded then anyway).
    approval_sweep_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VaultSettings:
        return cls(
            stores=StoreSettings.from_env(env),
            listen=env_str(env, "KEYLEASH_VAULT_LISTEN", "0.0.0.0:50051"),
            max_key_depth=env_int(env, "KEYLEASH_MAX_KEY_DEPTH", 8),
            default_ttl_seconds=env_int(env, "KEYLEASH_DEFAULT_KEY_TTL_SECONDS", 24 * 3600),
            max_ttl_seconds=env_int(env, "KEYLEASH_MAX_KEY_TTL_SECONDS", 366 * 24 * 3600),
            audit_enabled=env_bool(env, "KEYLEASH_AUDIT", True),
            audit_drain=env_bool(env, "KEYLEASH_AUDIT_DRAIN", True),
            audit_batch_size=env_int(env, "KEYLEASH_AUDIT_BATCH_SIZE", 2000),
            audit_max_stream_length=env_int(env, "KEYLEASH_AUDIT_MAX_STREAM_LENGTH", 1_000_000),
            audit_retention_days=env_int(env, "KEYLEASH_AUDIT_RETENTION_DAYS", 90),
            secrets_key=secrets_key_from_env(env),
            audit_max_lag_ms=env_int(env, "KEYLEASH_AUDIT_MAX_LAG_SECONDS", 30) * 1000,
            approval_sweep_seconds=env_float(env, "KEYLEASH_APPROVAL_SWEEP_SECONDS", 30.0),
        )


def secrets_key_from_env(env: Mapping[str, str]) -> bytes | None:
    """KEYLEASH_SECRETS_KEY (base64 of 32 bytes), or the file KEYLEASH_SECRETS_KEY_FILE holds."""
    name, encoded = "KEYLEASH_SECRETS_KEY", env_str(env, "KEYLEASH_SECRETS_KEY")
    path = env_str(env, "KEYLEASH_SECRETS_KEY_FILE")
    if path and not encoded:
        name = "KEYLEASH_SECRETS_KEY_FILE"
        try:
            with open(path, encoding="ascii") as handle:
                encoded = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            raise SettingsError(f"{name}: cannot read {path}: {error}") from None
    if not encoded:
        return None
    try:
        return parse_master_key(encoded)
    except SealingError as error:
        raise SettingsError(f"{name}: {error}") from None
