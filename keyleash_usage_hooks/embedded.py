"""The usage webhook receiver inside `keyleash up`: its listen address and its start/stop."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from keyleash_core.http_serving import RunningApp, serve_app
from keyleash_usage_hooks.app import create_app
from keyleash_usage_hooks.settings import DEFAULT_LISTEN, UsageHooksSettings, split_listen


def prepare_env(env: MutableMapping[str, str]) -> None:
    """The receiver's listen address (the service token comes with the gateway's env)."""
    env.setdefault("KEYLEASH_USAGE_HOOKS_LISTEN", DEFAULT_LISTEN)


async def start_usage_hooks(
    env: Mapping[str, str], vault_port: int, metering_port: int
) -> RunningApp:
    """Serves the receiver on KEYLEASH_USAGE_HOOKS_LISTEN, talking to the services just started."""
    settings = UsageHooksSettings.from_env(
        {
            **env,
            "KEYLEASH_METERING_TARGET": f"127.0.0.1:{metering_port}",
            "KEYLEASH_VAULT_TARGET": f"127.0.0.1:{vault_port}",
        }
    )
    host, port = split_listen(settings.listen)
    return await serve_app(
        create_app(settings), host, port, "usage webhook receiver",
        "pass --usage-hooks-listen or set KEYLEASH_USAGE_HOOKS_LISTEN",
    )  # fmt: skip
