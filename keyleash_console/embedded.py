"""The console inside `keyleash up` (and the tests): serve it on KEYLEASH_CONSOLE_LISTEN,
talking to the services just started."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from keyleash_console.app import create_app
from keyleash_console.settings import ConsoleSettings, split_listen

DEFAULT_CONSOLE_LISTEN = "127.0.0.1:8090"


@dataclass
class RunningConsole:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_console(
    env: Mapping[str, str], vault_port: int, metering_port: int
) -> RunningConsole:
    settings = ConsoleSettings.from_env(
        {
            "KEYLEASH_CONSOLE_LISTEN": DEFAULT_CONSOLE_LISTEN,
            **env,
            "KEYLEASH_VAULT_TARGET": f"127.0.0.1:{vault_port}",
            "KEYLEASH_METERING_TARGET": f"127.0.0.1:{metering_port}",
        }
    )
    return await serve_console(settings)


async def serve_console(settings: ConsoleSettings) -> RunningConsole:
    host, port = split_listen(settings.listen)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise OSError(
            f"console cannot listen on {settings.listen}: {error.strerror} "
            "(pass --console-listen or set KEYLEASH_CONSOLE_LISTEN)"
        ) from None
    sockets = getattr(site._server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return RunningConsole(runner, bound)
