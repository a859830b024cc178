"""Pages from Jinja2 templates with autoescaping on: whatever a key label, an endpoint or an
error message holds is shown as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from keyleash_console import views
from keyleash_console.sessions import Session

SESSION: web.RequestKey[Session] = web.RequestKey("console_session", Session)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)
CSRF_FIELD = "csrf_token"


def template_environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["time"] = views.time_text
    environment.filters["money"] = views.money_of
    environment.filters["state"] = views.state_name
    environment.filters["reason"] = views.reason_name
    environment.filters["decision"] = views.decision_name
    return environment


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    session: Session | None = request.get(SESSION)
    page = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            csrf_field=CSRF_FIELD,
            csrf_token=session.csrf_token if session else "",
            signed_in=session is not None,
            recent_tenants=session.tenants if session else [],
            tenant_id=request.match_info.get("tenant", ""),
            **context,
        )
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
