"""What the endpoint answers, as pure functions: a confirmation page for a link (GET), the result
of redeeming it (POST), and errors, each as HTML for a browser or JSON for an SDK."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from keyleash.vault.v1 import vault_pb2
from keyleash_core.approval_links import LinkClaim
from keyleash_core.money import Money

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta name="referrer" content="no-referrer"></head><body><h1>{title}</h1>{body}</body></html>"""


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    content_type: str


def confirm(claim: LinkClaim, token: str) -> Page:
    """A GET only shows what the link would do: link scanners and chat unfurlers fetch links,
    so the decision is a POST from this page's button."""
    verb = claim.action.value.capitalize()
    body = (
        f"<p>{verb} approval request <code>{html.escape(claim.approval_name)}</code>?</p>"
        f'<form method="post"><input type="hidden" name="token" value="{html.escape(token)}">'
        '<label>Reason <input name="reason" maxlength="1000"></label> '
        f'<button type="submit">{verb}</button></form>'
    )
    return _html(200, f"{verb} this request?", body)


def decided(approval: vault_pb2.Approval, as_json: bool) -> Page:
    state = vault_pb2.Approval.State.Name(approval.state).removeprefix("STATE_").lower()
    granted = ""
    if approval.HasField("granted"):
        granted = str(Money(approval.granted.currency_code, approval.granted.micros))
    if as_json:
        data = {"name": approval.name, "state": state, "granted": granted, "key": approval.key}
        return Page(200, json.dumps({"approval": data}).encode(), "application/json")
    detail = f" {html.escape(granted)} more for {html.escape(approval.quota)}" if granted else ""
    return _html(
        200,
        f"Request {state}",
        f"<p><code>{html.escape(approval.name)}</code> is {state}{detail}.</p>",
    )


def failed(status: int, code: str, message: str, as_json: bool) -> Page:
    if as_json:
        error = {"type": "keyleash_approval", "code": code, "message": message}
        return Page(status, json.dumps({"error": error}).encode(), "application/json")
    return _html(status, "This link cannot be used", f"<p>{html.escape(message)}</p>")


def _html(status: int, title: str, body: str) -> Page:
    text = _PAGE.format(title=html.escape(title), body=body)
    return Page(status, text.encode(), "text/html")
