"""Handlers of the audit, a run's ledger (and its CSV), spend, and connections."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from keyleash.vault.v1 import vault_pb2 as V
from keyleash_console import views
from keyleash_console.pages_keys import CONSOLE
from keyleash_console.rendering import render, session_of

DECISIONS: dict[str, V.Decision] = {
    "": V.DECISION_UNSPECIFIED,
    "allow": V.DECISION_ALLOW,
    "deny": V.DECISION_DENY,
}
SUBJECTS = ("tenant", "key", "agent", "run")


async def audit(request: web.Request) -> web.Response:
    tenant, query = request.match_info["tenant"], request.query
    key_id = query.get("key", "").strip()
    listing = V.ListAuthorizationsRequest(
        tenant_id=tenant,
        key_name=f"tenants/{tenant}/keys/{key_id}" if key_id else "",
        agent_run_id=query.get("run", "").strip(),
        decision=DECISIONS.get(query.get("decision", ""), V.DECISION_UNSPECIFIED),
        page_token=query.get("page_token", ""),
    )
    page = await request.app[CONSOLE].audit_page(session_of(request).token, listing)
    return render(
        request,
        "audit.html",
        page=page,
        key_filter=key_id,
        run_filter=listing.agent_run_id,
        decision_filter=query.get("decision", ""),
        decisions=list(DECISIONS),
    )


async def ledger(request: web.Request) -> web.Response:
    run = request.query.get("run", "").strip()
    rows: list[views.LedgerRow] = []
    if run:
        rows = await request.app[CONSOLE].run_ledger(
            session_of(request).token, request.match_info["tenant"], run
        )
    return render(request, "ledger.html", run=run, rows=rows)


async def ledger_csv(request: web.Request) -> web.Response:
    tenant, run = request.match_info["tenant"], request.query.get("run", "").strip()
    if not run:
        return render(request, "error.html", status=400, message="name a run (?run=...)")
    rows = await request.app[CONSOLE].run_ledger(session_of(request).token, tenant, run)
    return web.Response(
        text=views.ledger_csv(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="ledger.csv"'},
    )


async def spend(request: web.Request) -> web.Response:
    subject = request.query.get("subject", "tenant")
    subject = subject if subject in SUBJECTS else "tenant"
    value = request.query.get("value", "").strip()
    if subject != "tenant" and not value:
        subject = "tenant"
    report = await request.app[CONSOLE].spend(
        session_of(request).token, request.match_info["tenant"], subject, value, datetime.now(UTC)
    )
    return render(
        request,
        "spend.html",
        report=report,
        subject=subject,
        value=value,
        subjects=SUBJECTS,
        chart_width=views.CHART_WIDTH,
        chart_height=views.CHART_HEIGHT,
        chart_base=views.CHART_BASE,
    )


async def connections(request: web.Request) -> web.Response:
    listed = await request.app[CONSOLE].list_connections(
        session_of(request).token, request.match_info["tenant"]
    )
    return render(request, "connections.html", connections=listed)


async def add_connection(request: web.Request) -> web.StreamResponse:
    form, tenant = await request.post(), request.match_info["tenant"]
    await request.app[CONSOLE].add_connection(
        session_of(request).token,
        tenant,
        vendor=str(form.get("vendor", "")).strip(),
        connection_id=str(form.get("connection_id", "")).strip(),
        base_url=str(form.get("base_url", "")).strip(),
        secret=str(form.get("secret", "")),
    )
    raise web.HTTPSeeOther(request.app.router["connections"].url_for(tenant=tenant))


async def rotate_connection(request: web.Request) -> web.StreamResponse:
    form, match = await request.post(), request.match_info
    name = f"tenants/{match['tenant']}/connections/{match['connection']}"
    await request.app[CONSOLE].rotate_connection(
        session_of(request).token, name, str(form.get("secret", ""))
    )
    raise web.HTTPSeeOther(request.app.router["connections"].url_for(tenant=match["tenant"]))
