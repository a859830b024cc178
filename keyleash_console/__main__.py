"""`python -m keyleash_console`: serve the operator console from KEYLEASH_* settings."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from keyleash_console.app import create_app
from keyleash_console.settings import ConsoleSettings, split_listen
from keyleash_core.settings import SettingsError
from keyleash_core.telemetry import setup_logging


def main() -> None:
    setup_logging(os.environ)
    try:
        settings = ConsoleSettings.from_env(os.environ)
    except SettingsError as error:
        print(f"keyleash_console: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    host, port = split_listen(settings.listen)

    async def app() -> web.Application:
        return create_app(settings)  # inside the loop: its clients bind to it

    web.run_app(app(), host=host, port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
