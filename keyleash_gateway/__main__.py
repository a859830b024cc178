"""`python -m keyleash_gateway`: run the egress gateway from KEYLEASH_* settings."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from keyleash_core.settings import SettingsError
from keyleash_core.telemetry import setup_logging
from keyleash_gateway.app import create_app
from keyleash_gateway.settings import GatewaySettings, split_listen


def main() -> None:
    setup_logging(os.environ)
    try:
        settings = GatewaySettings.from_env(os.environ)
    except SettingsError as error:
        print(f"keyleash_gateway: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    host, port = split_listen(settings.listen)

    async def app() -> web.Application:
        return create_app(settings)  # inside the loop: its clients bind to it

    web.run_app(app(), host=host, port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
