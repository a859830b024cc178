"""The usage webhook receiver inside `keyleash up`: its listen address and its start/stop."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from aiohttp import web

from keyleash_usage_hooks.app import create_app
from keyleash_usage_hooks.settings import DEFAULT_LISTEN, UsageHooksSettings, split_listen


def prepare_env(env: MutableMapping[str, str]) -> None:
    """The receiver's listen address (the service token comes with the gateway's env)."""
    env.setdefault("KEYLEASH_USAGE_HOOKS_LISTEN", DEFAULT_LISTEN)


@dataclass
class RunningUsageHooks:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_usage_hooks(env: Mapping[str, str], metering_port: int) -> RunningUsageHooks:
    """Serves the receiver on KEYLEASH_USAGE_HOOKS_LISTEN, talking to the Metering just started."""
    settings = UsageHooksSettings.from_env(
        {**env, "KEYLEASH_METERING_TARGET": f"127.0.0.1:{metering_port}"}
    )
    host, port = split_listen(settings.listen)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise OSError(
            f"usage webhook receiver cannot listen on {settings.listen}: {error.strerror} "
            "(pass --usage-hooks-listen or set KEYLEASH_USAGE_HOOKS_LISTEN)"
        ) from None
    sockets = getattr(site._server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return RunningUsageHooks(runner, bound)
