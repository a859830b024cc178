"""Handlers of the approvals inbox (requests with their cost context, approve / deny) and of the
templates (list, provision an agent, mint a key from a template). Thin: read the form, ask the
Inbox use cases, render.

Minted secrets are rendered into the one answer to the form's POST and kept nowhere: the form
carries a request id, the session remembers which ids were shown, and a resubmission (a reload)
gets a page saying they were shown already, without the secrets and without minting again."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from aiohttp import web

from keyleash_console import inbox as use
from keyleash_console.inbox import Inbox
from keyleash_console.rendering import render, session_of

INBOX: web.AppKey[Inbox] = web.AppKey("inbox", Inbox)


async def approvals(request: web.Request) -> web.Response:
    state = request.query.get("state", "")
    state = state if state in use.APPROVAL_STATES else ""
    listed = await request.app[INBOX].approvals(
        session_of(request).token, request.match_info["tenant"], state
    )
    session_of(request).remember_tenant(request.match_info["tenant"])
    return render(
        request,
        "approvals.html",
        approvals=listed,
        state=state,
        states=list(use.APPROVAL_STATES),
        limit=use.INBOX_LIMIT,
    )


async def approve(request: web.Request) -> web.StreamResponse:
    form, inbox, token = await request.post(), request.app[INBOX], session_of(request).token
    name = _approval_name(request)
    reason = _text(form, "reason")
    approval = await inbox.get(token, name)
    typed = _text(form, "amount")
    try:
        amount = use.parse_amount(typed, approval.amount.currency_code) if typed else None
    except use.AmountError as bad:
        return render(request, "error.html", status=400, message=str(bad))
    await inbox.approve(token, name, amount or approval.amount, reason)
    return _back_to_inbox(request)


async def deny(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    reason = _text(form, "reason")
    if not reason:
        return render(request, "error.html", status=400, message="a denial needs a reason")
    await request.app[INBOX].deny(session_of(request).token, _approval_name(request), reason)
    return _back_to_inbox(request)


async def templates(request: web.Request) -> web.Response:
    listed = await request.app[INBOX].templates(
        session_of(request).token, request.match_info["tenant"]
    )
    return render(
        request,
        "templates.html",
        templates=listed,
        provisionable=[t for t in listed if t.vendor_keys],
        request_id=str(uuid.uuid4()),  # makes a resubmitted form recognisable
    )


async def provision(request: web.Request) -> web.StreamResponse:
    return await _mint(request, "provision")


async def mint(request: web.Request) -> web.StreamResponse:
    return await _mint(request, "mint")


async def _mint(request: web.Request, what: str) -> web.StreamResponse:
    form, session = await request.post(), session_of(request)
    request_id = _text(form, "request_id")
    agent_id = _text(form, "agent_id")
    template = _text(form, "template")
    if not (request_id and agent_id and template):
        return render(request, "error.html", status=400, message="name an agent and a template")
    tenant = request.match_info["tenant"]
    if session.was_shown(request_id):
        return render(request, "minted.html", status=409, minted=None)
    inbox, label = request.app[INBOX], _text(form, "label")
    call = inbox.provision if what == "provision" else inbox.mint
    minted = await call(session.token, tenant, agent_id, template, label, request_id)
    session.mark_shown(request_id)
    return render(request, "minted.html", minted=minted)


def _approval_name(request: web.Request) -> str:
    return f"tenants/{request.match_info['tenant']}/approvals/{request.match_info['approval']}"


def _text(form: Mapping[str, object], field: str) -> str:
    """A form field as typed, trimmed; lengths are the Vault's to check (INVALID_ARGUMENT)."""
    return str(form.get(field, "")).strip()


def _back_to_inbox(request: web.Request) -> web.StreamResponse:
    tenant = request.match_info["tenant"]
    url = request.app.router["approvals"].url_for(tenant=tenant)
    raise web.HTTPSeeOther(url.with_fragment(request.match_info["approval"]))
