"""Composition root of the usage webhook receiver: the Metering and Vault ports, the use case,
the routes.
`create_app(settings)` returns an aiohttp application (tests serve it on port 0).

    POST /v1/tenants/{tenant}/usage-events   one event or {"events": [...]}, signed
    GET  /healthz
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from keyleash_core.http_serving import read_body_within
from keyleash_usage_hooks import answers
from keyleash_usage_hooks.agents import AgentKeys
from keyleash_usage_hooks.answers import Reply, UsageHookError
from keyleash_usage_hooks.ingest import UsageIngest
from keyleash_usage_hooks.metering import Metering
from keyleash_usage_hooks.settings import UsageHooksSettings

log = logging.getLogger("keyleash.usage_hooks")

EVENTS_PATH = "/v1/tenants/{tenant}/usage-events"
INGEST: web.AppKey[UsageIngest] = web.AppKey("ingest", UsageIngest)
SETTINGS: web.AppKey[UsageHooksSettings] = web.AppKey("settings", UsageHooksSettings)


def create_app(settings: UsageHooksSettings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[json_errors])
    app[SETTINGS] = settings
    metering = Metering(settings)
    agents = AgentKeys(settings)
    app[INGEST] = UsageIngest(metering, agents, settings.tolerance_seconds)

    async def close(_app: web.Application) -> None:
        await metering.close()
        await agents.close()

    app.on_cleanup.append(close)
    app.router.add_get("/healthz", healthz)
    app.router.add_post(EVENTS_PATH, usage_events)
    return app


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own answers (no such route, wrong method) as JSON errors too."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message = f"{request.method} {request.path[:200]}: {error.reason}; see {EVENTS_PATH}"
        return _respond(answers.error(error.status, UsageHookError.NOT_FOUND, message))


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def usage_events(request: web.Request) -> web.Response:
    limit = request.app[SETTINGS].max_body_bytes
    body = await read_body_within(request, limit)
    if body is None:
        return _respond(
            answers.error(
                413, UsageHookError.BODY_TOO_LARGE, f"bodies are limited to {limit} bytes"
            )
        )
    tenant = request.match_info["tenant"]
    try:
        reply = await request.app[INGEST].handle(tenant, request.headers, body)
    except Exception:
        log.exception("usage webhook error for tenant %s", tenant[:128])
        reply = answers.error(503, UsageHookError.UNAVAILABLE, "internal error; nothing recorded")
    return _respond(reply)


def _respond(reply: Reply) -> web.Response:
    response = web.Response(status=reply.status, body=reply.body)
    for name, value in reply.headers:
        response.headers.add(name, value)
    return response
