"""Handlers of sign-in, the tenant's key tree, a key, and the one-click stops. Thin: read the
request, ask the Console use cases, render."""

from __future__ import annotations

import logging

from aiohttp import web

from keyleash.vault.v1 import vault_pb2 as V
from keyleash_console.rendering import render, session_of
from keyleash_console.security import SESSIONS
from keyleash_console.sessions import COOKIE_NAME
from keyleash_console.usecases import ACTIONS, Console
from keyleash_core.auth import FailedAttemptLimiter

log = logging.getLogger("keyleash.console")

CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
SECURE_COOKIES: web.AppKey[bool] = web.AppKey("secure_cookies", bool)
SIGN_IN_FAILURES: web.AppKey[FailedAttemptLimiter] = web.AppKey(
    "sign_in_failures", FailedAttemptLimiter
)
ANY_PEER = "console:any"  # every peer's failures together, well under the services' 30/min
MAX_FAILURES_PER_MINUTE = 10
STATES: dict[str, V.Key.State] = {
    "": V.Key.STATE_UNSPECIFIED,
    "active": V.Key.STATE_ACTIVE,
    "frozen": V.Key.STATE_FROZEN,
    "revoked": V.Key.STATE_REVOKED,
}


async def signin_form(request: web.Request) -> web.Response:
    return render(request, "signin.html", failed=False)


async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = str(form.get("token", "")).strip()
    guesses = request.app[SIGN_IN_FAILURES]
    peer = request.remote or "unknown"
    # Refused here, before the services see them: the services count failed credentials per
    # peer, and every console user (and a gateway on this host) shares the console's address.
    if guesses.retry_after(peer) or guesses.retry_after(ANY_PEER):
        return render(request, "signin.html", status=429, failed=True)
    if not await request.app[CONSOLE].is_admin(token):
        guesses.failed(peer)
        guesses.failed(ANY_PEER)
        log.info("console sign-in refused from %s", peer)  # never the token
        return render(request, "signin.html", status=401, failed=True)
    sessions = request.app[SESSIONS]
    session = sessions.open(token)
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        COOKIE_NAME,
        session.session_id,
        max_age=sessions.seconds_left(session),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or request.app[SECURE_COOKIES],
    )
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS].close(session_of(request).session_id)
    response = web.HTTPSeeOther("/signin")
    response.del_cookie(COOKIE_NAME, path="/")
    return response


async def home(request: web.Request) -> web.StreamResponse:
    tenant = request.query.get("tenant_id", "").strip()
    if tenant:
        raise web.HTTPSeeOther(request.app.router["keys"].url_for(tenant=tenant))
    return render(request, "home.html")


async def keys(request: web.Request) -> web.Response:
    tenant, query, session = request.match_info["tenant"], request.query, session_of(request)
    state, run = query.get("state", ""), query.get("run", "").strip()
    if run:
        page = await request.app[CONSOLE].keys_of_run(session.token, tenant, run)
    else:
        page = await request.app[CONSOLE].keys_page(
            session.token,
            tenant,
            STATES.get(state, V.Key.STATE_UNSPECIFIED),
            query.get("label", ""),
            query.get("agent", ""),
            query.get("page_token", ""),
        )
    session.remember_tenant(tenant)
    return render(
        request,
        "keys.html",
        page=page,
        state=state,
        states=list(STATES),
        label=query.get("label", ""),
        agent=query.get("agent", ""),
        run=run,
    )


async def search(request: web.Request) -> web.StreamResponse:
    """By key id, or by a pasted secret (POSTed, so it is in no URL; never shown back)."""
    tenant, form = request.match_info["tenant"], await request.post()
    secret = str(form.get("secret", "")).strip()
    key_id = str(form.get("key_id", "")).strip()
    if secret:
        name = await request.app[CONSOLE].find_by_secret(session_of(request).token, secret)
        if name is None:
            return render(request, "error.html", status=404, message="no key has that secret")
        tenant, _, key_id = name.removeprefix("tenants/").partition("/keys/")
    if not key_id:
        raise web.HTTPSeeOther(request.app.router["keys"].url_for(tenant=tenant))
    raise web.HTTPSeeOther(request.app.router["key"].url_for(tenant=tenant, key=key_id))


async def key(request: web.Request) -> web.Response:
    detail = await request.app[CONSOLE].key_detail(session_of(request).token, _key_name(request))
    return render(request, "key.html", detail=detail, actions=ACTIONS)


async def confirm(request: web.Request) -> web.Response:
    """The subtree an action will reach, and the form that confirms it with a reason."""
    action = _action(request)
    console, token = request.app[CONSOLE], session_of(request).token
    target = await console.vault.get_key(_key_name(request), token=token)
    subtree = await console.subtree(token, target)
    return render(request, "confirm.html", action=action, key=target, subtree=subtree)


async def act(request: web.Request) -> web.StreamResponse:
    action, form = _action(request), await request.post()
    reason = str(form.get("reason", "")).strip()
    if action != "unfreeze" and not reason:
        return render(request, "error.html", status=400, message=f"a {action} needs a reason")
    await request.app[CONSOLE].act(session_of(request).token, _key_name(request), action, reason)
    match = request.match_info
    raise web.HTTPSeeOther(
        request.app.router["key"].url_for(tenant=match["tenant"], key=match["key"])
    )


def _key_name(request: web.Request) -> str:
    return f"tenants/{request.match_info['tenant']}/keys/{request.match_info['key']}"


def _action(request: web.Request) -> str:
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    return action
