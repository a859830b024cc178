"""The console's guards, as aiohttp middlewares: strict headers on every answer, a session for
every page but sign-in, a CSRF token on every POST, and Keyleash errors as pages (never a
traceback, never the operator's token)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from keyleash.client import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    KeyleashError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from keyleash_console.rendering import CSRF_FIELD, SESSION, render
from keyleash_console.sessions import COOKIE_NAME, SessionStore

log = logging.getLogger("keyleash.console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSIONS: web.AppKey[SessionStore] = web.AppKey("sessions", SessionStore)
PUBLIC_PATHS = frozenset({"/signin", "/healthz"})

# No inline script or style, nothing from elsewhere, no framing, no plugins.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send Origin: null
    "Cache-Control": "no-store",
}
_STATUS_OF: list[tuple[type[KeyleashError], int]] = [
    (InvalidArgument, 400),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (FailedPrecondition, 409),
]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as answer:
        response = answer
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def require_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "POST" and not _same_origin(request):
        return refused(403, "CROSS_ORIGIN", "forms are accepted only from the console's pages")
    if request.path in PUBLIC_PATHS or request.path.startswith("/static/"):
        return await handler(request)
    session = request.app[SESSIONS].find(request.cookies.get(COOKIE_NAME, ""))
    if session is None:
        if request.method == "POST":
            return refused(401, "SESSION_REQUIRED", "sign in first")
        raise web.HTTPSeeOther("/signin")
    if request.method == "POST":
        form = await request.post()
        if not session.csrf_matches(str(form.get(CSRF_FIELD, ""))):
            return refused(403, "CSRF_TOKEN_INVALID", "the form's CSRF token is missing or stale")
    request[SESSION] = session
    return await handler(request)


@web.middleware
async def keyleash_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Unauthenticated:
        request.app[SESSIONS].close(request.cookies.get(COOKIE_NAME, ""))
        raise web.HTTPSeeOther("/signin") from None
    except KeyleashError as error:
        status = next((s for kind, s in _STATUS_OF if isinstance(error, kind)), 503)
        if status == 503:
            log.warning("keyleash call failed on %s: %s", request.path, error)
        return error_page(request, status, error.message or str(error))
    except web.HTTPException:
        raise
    except Exception:
        log.exception("console error on %s %s", request.method, request.path)
        return error_page(request, 503, "the console failed on this request; it is logged")


def _same_origin(request: web.Request) -> bool:
    """No Origin (a script or an old browser: the CSRF token still decides), or this host's."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.partition("://")[2] == request.host


def refused(status: int, code: str, message: str) -> web.Response:
    """A JSON error a script can read (the pages never post without their token)."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status=status, message=message)
