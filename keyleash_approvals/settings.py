"""Approvals endpoint settings, read once from KEYLEASH_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import SettingsError, env_float, env_str

DEFAULT_LISTEN = "0.0.0.0:8091"


@dataclass(frozen=True)
class ApprovalsSettings:
    listen: str
    vault_target: str
    service_token: str
    # Deadline of each Vault call; past it the endpoint answers 503 and nothing was decided.
    keyleash_timeout_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApprovalsSettings:
        vault = env_str(env, "KEYLEASH_VAULT_TARGET")
        token = env_str(env, "KEYLEASH_SERVICE_TOKEN")
        for name, value in (("KEYLEASH_VAULT_TARGET", vault), ("KEYLEASH_SERVICE_TOKEN", token)):
            if not value:
                raise SettingsError(f"{name} must be set for the approvals endpoint")
        settings = cls(
            listen=env_str(env, "KEYLEASH_APPROVALS_LISTEN", DEFAULT_LISTEN),
            vault_target=vault,
            service_token=token,
            keyleash_timeout_seconds=env_float(
                env, "KEYLEASH_APPROVALS_KEYLEASH_TIMEOUT_SECONDS", 5.0
            ),
        )
        split_listen(settings.listen)
        return settings


def split_listen(listen: str) -> tuple[str, int]:
    """("0.0.0.0", 8091) from "0.0.0.0:8091"; SettingsError naming the variable otherwise."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"KEYLEASH_APPROVALS_LISTEN must be host:port, got {listen!r}")
    return host.strip("[]"), int(port)
