"""`python -m keyleash_approvals`: serve the approval links from KEYLEASH_* settings."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from keyleash_approvals.app import create_app
from keyleash_approvals.settings import ApprovalsSettings, split_listen
from keyleash_core.settings import SettingsError
from keyleash_core.telemetry import setup_logging


def main() -> None:
    setup_logging(os.environ)
    try:
        settings = ApprovalsSettings.from_env(os.environ)
    except SettingsError as error:
        print(f"keyleash_approvals: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    host, port = split_listen(settings.listen)

    async def app() -> web.Application:
        return create_app(settings)  # inside the loop: its client binds to it

    web.run_app(app(), host=host, port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
