"""Receiver settings, read once from KEYLEASH_* variables (nothing else reads the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import SettingsError, env_float, env_int, env_str

DEFAULT_LISTEN = "0.0.0.0:8085"


@dataclass(frozen=True)
class UsageHooksSettings:
    """Everything the receiver is configured with."""

    listen: str
    metering_target: str
    service_token: str
    # The Vault, asked which key an event naming an agent_id records against.
    vault_target: str
    # A batch of 1,000 events is ~250 KB; bodies above this are refused (413) unread.
    max_body_bytes: int = 4 * 1024 * 1024
    # The replay window of Standard Webhooks: webhook-timestamp at most this far from now.
    tolerance_seconds: int = 300
    # Deadline of each Metering call; past it the receiver answers 503 and the sender retries.
    keyleash_timeout_seconds: float = 10.0
    # How long a tenant's signing secret is reused before it is fetched again (a delivery that
    # does not verify refetches it at once, so a rotation takes effect immediately).
    secret_cache_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> UsageHooksSettings:
        metering = env_str(env, "KEYLEASH_METERING_TARGET")
        vault = env_str(env, "KEYLEASH_VAULT_TARGET")
        token = env_str(env, "KEYLEASH_SERVICE_TOKEN")
        for name, value in (
            ("KEYLEASH_METERING_TARGET", metering),
            ("KEYLEASH_SERVICE_TOKEN", token),
            ("KEYLEASH_VAULT_TARGET", vault),
        ):
            if not value:
                raise SettingsError(f"{name} must be set for the usage webhook receiver")
        settings = cls(
            listen=env_str(env, "KEYLEASH_USAGE_HOOKS_LISTEN", DEFAULT_LISTEN),
            metering_target=metering,
            service_token=token,
            vault_target=vault,
            max_body_bytes=env_int(env, "KEYLEASH_USAGE_HOOKS_MAX_BODY_BYTES", 4 * 1024 * 1024),
            tolerance_seconds=env_int(env, "KEYLEASH_USAGE_HOOKS_TOLERANCE_SECONDS", 300),
            keyleash_timeout_seconds=env_float(
                env, "KEYLEASH_USAGE_HOOKS_KEYLEASH_TIMEOUT_SECONDS", 10.0
            ),
            secret_cache_seconds=env_float(env, "KEYLEASH_USAGE_HOOKS_SECRET_CACHE_SECONDS", 30.0),
        )
        split_listen(settings.listen)
        return settings


def split_listen(listen: str) -> tuple[str, int]:
    """("0.0.0.0", 8085) from "0.0.0.0:8085"; SettingsError naming the variable otherwise."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"KEYLEASH_USAGE_HOOKS_LISTEN must be host:port, got {listen!r}")
    return host.strip("[]"), int(port)
