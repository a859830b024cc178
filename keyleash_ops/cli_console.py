"""`keyleash console`: serve the operator console (keyleash_console) in the foreground, as a
gRPC client of a running Vault and Metering. Operators sign in in the browser with an admin
token; the command itself holds none."""

from __future__ import annotations

import argparse
import os
import sys

from keyleash_core.settings import SettingsError
from keyleash_ops.cli_common import DEFAULT_METERING, DEFAULT_VAULT

LISTEN_ENV = "KEYLEASH_CONSOLE_LISTEN"
DEFAULT_LISTEN = "127.0.0.1:8090"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash console`."""
    parser = subparsers.add_parser(
        "console", help="serve the operator console (web pages over Vault and Metering)"
    )
    parser.add_argument(
        "--listen",
        metavar="ADDR",
        default=None,
        help=f"listen address (default: ${LISTEN_ENV} or {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--vault",
        metavar="HOST:PORT",
        default=None,
        help=f"Vault address (default: $KEYLEASH_VAULT_TARGET or {DEFAULT_VAULT})",
    )
    parser.add_argument(
        "--metering",
        metavar="HOST:PORT",
        default=None,
        help=f"Metering address (default: $KEYLEASH_METERING_TARGET or {DEFAULT_METERING})",
    )
    parser.set_defaults(handler=run)


def console_env(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, str]:
    env = dict(environ)
    env["KEYLEASH_CONSOLE_LISTEN"] = args.listen or env.get(LISTEN_ENV) or DEFAULT_LISTEN
    env["KEYLEASH_VAULT_TARGET"] = args.vault or env.get("KEYLEASH_VAULT_TARGET") or DEFAULT_VAULT
    env["KEYLEASH_METERING_TARGET"] = (
        args.metering or env.get("KEYLEASH_METERING_TARGET") or DEFAULT_METERING
    )
    return env


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from keyleash_console.app import create_app
    from keyleash_console.settings import ConsoleSettings, split_listen

    try:
        settings = ConsoleSettings.from_env(console_env(args, dict(os.environ)))
    except SettingsError as error:
        print(f"keyleash console: {error}", file=sys.stderr)
        return 2
    host, port = split_listen(settings.listen)
    print(f"keyleash console: serving on http://{settings.listen}", flush=True)

    async def app() -> web.Application:
        return create_app(settings)  # inside the loop: its clients bind to it

    web.run_app(app(), host=host, port=port, print=None, access_log=None)
    return 0
