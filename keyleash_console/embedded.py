"""The console inside `keyleash up` (and the tests): serve it on KEYLEASH_CONSOLE_LISTEN,
talking to the services just started."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from keyleash_console.app import create_app
from keyleash_console.settings import ConsoleSettings, split_listen
from keyleash_core.http_serving import RunningApp, serve_app

DEFAULT_CONSOLE_LISTEN = "127.0.0.1:8090"  # an admin sign-in page: loopback unless asked
RunningConsole = RunningApp


def prepare_env(env: MutableMapping[str, str]) -> None:
    env.setdefault("KEYLEASH_CONSOLE_LISTEN", DEFAULT_CONSOLE_LISTEN)


async def start_console(env: Mapping[str, str], vault_port: int, metering_port: int) -> RunningApp:
    settings = ConsoleSettings.from_env(
        {
            "KEYLEASH_CONSOLE_LISTEN": DEFAULT_CONSOLE_LISTEN,
            **env,
            "KEYLEASH_VAULT_TARGET": f"127.0.0.1:{vault_port}",
            "KEYLEASH_METERING_TARGET": f"127.0.0.1:{metering_port}",
        }
    )
    return await serve_console(settings)


async def serve_console(settings: ConsoleSettings) -> RunningApp:
    host, port = split_listen(settings.listen)
    return await serve_app(
        create_app(settings), host, port, "console",
        "pass --console-listen or set KEYLEASH_CONSOLE_LISTEN",
    )  # fmt: skip
