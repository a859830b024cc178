"""Serving an aiohttp application on a listen address inside a running event loop: what
`keyleash up` does for each of its HTTP components (gateway, usage webhooks, approvals, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


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
