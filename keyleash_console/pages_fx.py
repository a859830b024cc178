"""Handlers of the exchange rates page: the FX table in force (global to the deployment, not a
tenant's) and an admin form that puts a rate in force for every tenant (SetExchangeRate)."""

from __future__ import annotations

from aiohttp import web

from keyleash_console.pages_keys import CONSOLE
from keyleash_console.rendering import render, session_of


async def exchange_rates(request: web.Request) -> web.Response:
    listed = await request.app[CONSOLE].metering.list_exchange_rates(
        token=session_of(request).token
    )
    return render(
        request, "fx.html", rates=list(listed.rates), fx_table_version=listed.fx_table_version
    )


async def set_exchange_rate(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    await request.app[CONSOLE].metering.set_exchange_rate(
        str(form.get("base", "")).strip().upper(),
        str(form.get("quote", "")).strip().upper(),
        str(form.get("rate", "")).strip(),
        token=session_of(request).token,
    )
    raise web.HTTPSeeOther(request.app.router["fx"].url_for())
