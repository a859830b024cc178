"""Composition root of the console: the Keyleash clients, the session store, the templates, the
guards, the routes. `create_app(settings)` returns an aiohttp application (tests serve it on
port 0)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from keyleash_console import pages_fx as fx
from keyleash_console import pages_inbox as inbox
from keyleash_console import pages_keys as keys
from keyleash_console import pages_money as money
from keyleash_console.inbox import Inbox
from keyleash_console.rendering import TEMPLATES, template_environment
from keyleash_console.security import (
    SESSIONS,
    keyleash_errors,
    require_session,
    security_headers,
)
from keyleash_console.sessions import SessionStore
from keyleash_console.settings import ConsoleSettings
from keyleash_console.usecases import Console
from keyleash_core.auth import FailedAttemptLimiter

STATIC = Path(__file__).parent / "static"


def create_app(settings: ConsoleSettings) -> web.Application:
    app = web.Application(middlewares=[security_headers, require_session, keyleash_errors])
    console = Console(settings)
    app[keys.CONSOLE] = console
    app[inbox.INBOX] = Inbox(console.vault)
    app[SESSIONS] = SessionStore(settings.session_seconds)
    app[keys.SECURE_COOKIES] = settings.secure_cookies
    app[TEMPLATES] = template_environment()
    app[keys.SIGN_IN_FAILURES] = FailedAttemptLimiter(keys.MAX_FAILURES_PER_MINUTE, 60.0)

    async def close(_app: web.Application) -> None:
        await console.close()

    app.on_cleanup.append(close)
    add_routes(app.router)
    return app


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/healthz", healthz)
    router.add_static("/static/", STATIC, append_version=False)
    router.add_get("/signin", keys.signin_form)
    router.add_post("/signin", keys.signin)
    router.add_post("/signout", keys.signout)
    router.add_get("/", keys.home)
    tenant = "/tenants/{tenant}"
    router.add_get(f"{tenant}/keys", keys.keys, name="keys")
    router.add_post(f"{tenant}/search", keys.search)
    router.add_get(f"{tenant}/keys/{{key}}", keys.key, name="key")
    router.add_get(f"{tenant}/keys/{{key}}/{{action}}", keys.confirm)
    router.add_post(f"{tenant}/keys/{{key}}/{{action}}", keys.act)
    router.add_get(f"{tenant}/audit", money.audit, name="audit")
    router.add_get(f"{tenant}/ledger", money.ledger, name="ledger")
    router.add_get(f"{tenant}/ledger.csv", money.ledger_csv)
    router.add_get(f"{tenant}/spend", money.spend, name="spend")
    router.add_get(f"{tenant}/connections", money.connections, name="connections")
    router.add_post(f"{tenant}/connections", money.add_connection)
    router.add_post(f"{tenant}/connections/{{connection}}/rotate", money.rotate_connection)
    router.add_get(f"{tenant}/approvals", inbox.approvals, name="approvals")
    router.add_post(f"{tenant}/approvals/{{approval}}/approve", inbox.approve)
    router.add_post(f"{tenant}/approvals/{{approval}}/deny", inbox.deny)
    router.add_get(f"{tenant}/templates", inbox.templates, name="templates")
    router.add_post(f"{tenant}/provision", inbox.provision)
    router.add_post(f"{tenant}/mint", inbox.mint)
    router.add_get("/fx", fx.exchange_rates, name="fx")
    router.add_post("/fx", fx.set_exchange_rate)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
