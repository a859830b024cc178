"""The `python -m vault_service` / `python -m metering_service` entry point, shared."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping

from keyleash_core.grpc_server import BuiltServer
from keyleash_core.settings import SettingsError
from keyleash_core.stores import StartupError
from keyleash_core.telemetry import setup_logging, setup_tracing


def run_service(name: str, start: Callable[[Mapping[str, str]], Awaitable[BuiltServer]]) -> None:
    """Starts one service from the environment and serves until SIGTERM/SIGINT.

    Start-up problems (bad settings, unreachable stores) print one line naming the variable and
    exit with status 2, never a traceback.
    """
    setup_logging(os.environ)
    setup_tracing(f"keyleash-{name}", os.environ)

    async def main() -> None:
        built = await start(os.environ)
        logging.getLogger("keyleash").info("%s listening on port %d", name, built.port)
        await built.serve_until_signalled()

    try:
        asyncio.run(main())
    except (SettingsError, StartupError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
