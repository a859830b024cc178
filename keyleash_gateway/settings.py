"""Gateway settings, read once from KEYLEASH_* variables (nothing else reads the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import SettingsError, env_float, env_int, env_str


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway is configured with."""

    listen: str
    vault_target: str
    metering_target: str
    service_token: str
    # Request bodies above this are refused (413) before anything is decided.
    max_body_bytes: int = 1024 * 1024
    # Vendor answers above this are cut off (502): costs are parsed from whole answers.
    max_response_bytes: int = 16 * 1024 * 1024
    # How long the vendor may take to answer once the request was sent.
    upstream_timeout_seconds: float = 60.0
    # Deadline of each Vault/Metering call; past it the gateway answers 503, fail closed.
    keyleash_timeout_seconds: float = 5.0
    # The URL the gateway is reached at from outside (Twilio signs status callbacks with it).
    public_url: str = ""
    # Where charges waiting to be sent again to Metering are kept (charge_outbox.py); empty:
    # in memory only.
    state_dir: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewaySettings:
        vault = env_str(env, "KEYLEASH_VAULT_TARGET")
        metering = env_str(env, "KEYLEASH_METERING_TARGET")
        token = env_str(env, "KEYLEASH_SERVICE_TOKEN")
        for name, value in (
            ("KEYLEASH_VAULT_TARGET", vault),
            ("KEYLEASH_METERING_TARGET", metering),
            ("KEYLEASH_SERVICE_TOKEN", token),
        ):
            if not value:
                raise SettingsError(f"{name} must be set for the gateway")
        settings = cls(
            listen=env_str(env, "KEYLEASH_GATEWAY_LISTEN", "0.0.0.0:8080"),
            vault_target=vault,
            metering_target=metering,
            service_token=token,
            max_body_bytes=env_int(env, "KEYLEASH_GATEWAY_MAX_BODY_BYTES", 1024 * 1024),
            max_response_bytes=env_int(
                env, "KEYLEASH_GATEWAY_MAX_RESPONSE_BYTES", 16 * 1024 * 1024
            ),
            upstream_timeout_seconds=env_float(
                env, "KEYLEASH_GATEWAY_UPSTREAM_TIMEOUT_SECONDS", 60.0
            ),
            keyleash_timeout_seconds=env_float(
                env, "KEYLEASH_GATEWAY_KEYLEASH_TIMEOUT_SECONDS", 5.0
            ),
            public_url=env_str(env, "KEYLEASH_GATEWAY_PUBLIC_URL").rstrip("/"),
            state_dir=env_str(env, "KEYLEASH_GATEWAY_STATE_DIR"),
        )
        split_listen(settings.listen)
        return settings


def split_listen(listen: str) -> tuple[str, int]:
    """("0.0.0.0", 8080) from "0.0.0.0:8080"; SettingsError naming the variable otherwise."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"KEYLEASH_GATEWAY_LISTEN must be host:port, got {listen!r}")
    return host.strip("[]"), int(port)
