"""Vault settings, read once from KEYLEASH_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import StoreSettings, env_int, env_str


@dataclass(frozen=True)
class VaultSettings:
    """Everything the Vault service is configured with."""

    stores: StoreSettings
    listen: str
    max_key_depth: int
    default_ttl_seconds: int
    max_ttl_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VaultSettings:
        return cls(
            stores=StoreSettings.from_env(env),
            listen=env_str(env, "KEYLEASH_VAULT_LISTEN", "0.0.0.0:50051"),
            max_key_depth=env_int(env, "KEYLEASH_MAX_KEY_DEPTH", 8),
            default_ttl_seconds=env_int(env, "KEYLEASH_DEFAULT_KEY_TTL_SECONDS", 24 * 3600),
            max_ttl_seconds=env_int(env, "KEYLEASH_MAX_KEY_TTL_SECONDS", 366 * 24 * 3600),
        )
