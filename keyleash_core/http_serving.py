"""What every HTTP component (gateway, usage webhooks, approvals, console) shares: serving its
aiohttp application inside a running loop (`keyleash up`) or as its own process
(`python -m ...`), and reading a request body within a size limit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from keyleash_core.settings import SettingsError
from keyleash_core.telemetry import setup_logging

S = TypeVar("S")


@dataclass
class RunningApp:
    runner: web.AppRunner
    port: int  # the port bound (port 0 in the listen address picks a free one)

    async def stop(self) -> None:
        await self.runner.cleanup()


async def serve_app(app: web.Application, host: str, port: int, what: str, hint: str) -> RunningApp:
    """Serves `app` on host:port; OSError naming `what` and `hint` (how to choose another
    address) when it cannot listen there."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise OSError(f"{what} cannot listen on {host}:{port}: {error.strerror} ({hint})") from None
    sockets = getattr(site._server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return RunningApp(runner, bound)


def run_standalone(
    prog: str,
    load_settings: Callable[[Mapping[str, str]], S],
    listen_of: Callable[[S], tuple[str, int]],
    create_app: Callable[[S], web.Application],
) -> None:
    """`python -m <component>`: settings from KEYLEASH_* (a bad one exits 2 in one line), then
    the app served until SIGINT/SIGTERM."""
    setup_logging(os.environ)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    host, port = listen_of(settings)

    async def app() -> web.Application:
        try:
            return create_app(settings)  # inside the loop: its clients bind to it
        except SettingsError as error:  # e.g. a state dir another process holds
            print(f"{prog}: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    web.run_app(app(), host=host, port=port, print=None, access_log=None)


async def read_body_within(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` bytes (the rest is not read)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
