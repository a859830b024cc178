"""Composition root of the approvals endpoint: the Vault port and the routes.
`create_app(settings)` returns an aiohttp application (tests serve it on port 0).

GET  /approvals/{approve|deny}?token=…   the confirmation page (decides nothing)
POST /approvals/{approve|deny}           form or query `token` (and `reason`): redeems the link
"""

from __future__ import annotations

import logging

from aiohttp import web

from keyleash_approvals import pages
from keyleash_approvals.settings import ApprovalsSettings
from keyleash_approvals.vault import LinkFailed, VaultPort
from keyleash_core.approval_links import LinkAction, peek_link

log = logging.getLogger("keyleash.approvals")
VAULT: web.AppKey[VaultPort] = web.AppKey("vault", VaultPort)
MAX_REASON = 1000


def create_app(settings: ApprovalsSettings) -> web.Application:
    app = web.Application(client_max_size=16 * 1024)
    app[VAULT] = VaultPort(settings)

    async def close(_app: web.Application) -> None:
        await app[VAULT].close()

    app.on_cleanup.append(close)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/approvals/{action}", confirm)
    app.router.add_post("/approvals/{action}", redeem)
    return app


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def confirm(request: web.Request) -> web.Response:
    action = _action(request)
    token = request.query.get("token", "")
    claim = peek_link(token)
    if action is None or claim is None or claim.action is not action:
        return _answer(pages.failed(400, "INVALID_LINK", "this is not an approval link", False))
    return _answer(pages.confirm(claim, token))


async def redeem(request: web.Request) -> web.Response:
    as_json = "application/json" in request.headers.get("Accept", "")
    action = _action(request)
    form = await request.post() if request.content_type.endswith("form-urlencoded") else {}
    token = str(form.get("token") or request.query.get("token", ""))
    reason = str(form.get("reason") or request.query.get("reason", ""))[:MAX_REASON]
    if action is None or not token:
        return _answer(pages.failed(400, "INVALID_LINK", "this is not an approval link", as_json))
    try:
        approval = await request.app[VAULT].redeem(action, token, reason)
    except LinkFailed as failure:
        return _answer(pages.failed(failure.status, failure.code, failure.message, as_json))
    except Exception:
        log.exception("approvals endpoint error")
        return _answer(pages.failed(503, "UNAVAILABLE", "nothing was decided; try again", as_json))
    return _answer(pages.decided(approval, as_json))


def _action(request: web.Request) -> LinkAction | None:
    try:
        return LinkAction(request.match_info["action"])
    except ValueError:
        return None


def _answer(page: pages.Page) -> web.Response:
    return web.Response(
        status=page.status,
        body=page.body,
        content_type=page.content_type,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
