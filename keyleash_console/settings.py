"""Console settings, read once from KEYLEASH_* variables (nothing else reads the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import SettingsError, env_bool, env_float, env_int, env_str


@dataclass(frozen=True)
class ConsoleSettings:
    """Everything the console is configured with. It holds no credential of its own: every
    call to the services carries the signed-in operator's token."""

    listen: str
    vault_target: str
    metering_target: str
    # A session ends this long after sign-in, whatever happens in between.
    session_seconds: int = 8 * 3600
    # Secure cookies even when the console itself is plain HTTP (behind a TLS proxy).
    secure_cookies: bool = False
    # Deadline of each Vault/Metering call.
    keyleash_timeout_seconds: float = 5.0
    # Keys per page of the tree: the usage bars cost one GetKeyUsage per key shown (2-4 ms of
    # vault time each; bench/console.py), so a page stays well under 300 ms.
    keys_page_size: int = 25

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConsoleSettings:
        vault = env_str(env, "KEYLEASH_VAULT_TARGET")
        metering = env_str(env, "KEYLEASH_METERING_TARGET")
        for name, value in (
            ("KEYLEASH_VAULT_TARGET", vault),
            ("KEYLEASH_METERING_TARGET", metering),
        ):
            if not value:
                raise SettingsError(f"{name} must be set for the console")
        settings = cls(
            listen=env_str(env, "KEYLEASH_CONSOLE_LISTEN", "127.0.0.1:8090"),
            vault_target=vault,
            metering_target=metering,
            session_seconds=env_int(env, "KEYLEASH_CONSOLE_SESSION_SECONDS", 8 * 3600),
            secure_cookies=env_bool(env, "KEYLEASH_CONSOLE_SECURE_COOKIES", False),
            keyleash_timeout_seconds=env_float(
                env, "KEYLEASH_CONSOLE_KEYLEASH_TIMEOUT_SECONDS", 5.0
            ),
            keys_page_size=env_int(env, "KEYLEASH_CONSOLE_KEYS_PAGE_SIZE", 25),
        )
        if settings.session_seconds <= 0:
            raise SettingsError("KEYLEASH_CONSOLE_SESSION_SECONDS must be positive")
        if not 1 <= settings.keys_page_size <= 1000:
            raise SettingsError("KEYLEASH_CONSOLE_KEYS_PAGE_SIZE must be 1..1000")
        split_listen(settings.listen)
        return settings


def split_listen(listen: str) -> tuple[str, int]:
    """("127.0.0.1", 8090) from "127.0.0.1:8090"; SettingsError naming the variable otherwise."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError(f"KEYLEASH_CONSOLE_LISTEN must be host:port, got {listen!r}")
    return host.strip("[]"), int(port)
