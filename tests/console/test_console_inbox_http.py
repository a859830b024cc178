"""The inbox's and the templates' forms without a browser: a POST without the session's CSRF
token changes nothing, a denial needs a reason, a grant needs a sane amount."""

from __future__ import annotations

import re
import uuid

import aiohttp
import pytest

from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from tests.console.conftest import ConsoleSystem, tenant_id
from tests.console.helpers import USD, authorize, mint, usd_cap
from tests.console.test_console_http import client, signed_in
from tests.console.test_console_inbox import denied_request

__all__ = ["client"]  # the aiohttp session fixture, shared with test_console_http


@pytest.mark.parametrize("action", ["approve", "deny"])
async def test_a_decision_without_the_csrf_token_is_refused(
    console_system: ConsoleSystem, client: aiohttp.ClientSession, action: str
) -> None:
    tenant = tenant_id()
    _, name = await denied_request(console_system, tenant, "run-csrf")
    await signed_in(client, console_system.url)
    url = f"{console_system.url}/{name}/{action}"
    for form in ({"reason": "forged", "amount": "100"}, {"reason": "x", "csrf_token": "stale"}):
        async with client.post(url, data=form) as answer:
            assert answer.status == 403
            assert (await answer.json())["error"]["code"] == "CSRF_TOKEN_INVALID"
    assert (await console_system.vault.get_approval(name)).state == V.Approval.STATE_PENDING


@pytest.mark.parametrize("path", ["provision", "mint"])
async def test_minting_without_the_csrf_token_is_refused(
    console_system: ConsoleSystem, client: aiohttp.ClientSession, path: str
) -> None:
    tenant = tenant_id()
    await signed_in(client, console_system.url)
    form = {
        "agent_id": "forged",
        "template": "policyTemplates/agent-per-vendor",
        "request_id": str(uuid.uuid4()),
    }
    async with client.post(f"{console_system.url}/tenants/{tenant}/{path}", data=form) as answer:
        assert answer.status == 403
        assert (await answer.json())["error"]["code"] == "CSRF_TOKEN_INVALID"
        assert "vk_" not in await answer.text()
    assert [k async for k in console_system.vault.iter_keys(tenant_id=tenant)] == []


async def test_a_denial_needs_a_reason_and_a_grant_a_sane_amount(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    tenant = tenant_id()
    _, name = await denied_request(console_system, tenant, "run-forms")
    csrf = await signed_in(client, console_system.url)
    url = f"{console_system.url}/{name}"
    async with client.post(f"{url}/deny", data={"csrf_token": csrf, "reason": " "}) as answer:
        assert answer.status == 400
        assert "needs a reason" in await answer.text()
    for amount in ("abc", "-1", "0", "1.0000001", "2 EUR", "NaN", "1e30"):
        form = {"csrf_token": csrf, "amount": amount}
        async with client.post(f"{url}/approve", data=form) as answer:
            assert answer.status == 400, amount
            assert "Traceback" not in await answer.text()
    assert (await console_system.vault.get_approval(name)).state == V.Approval.STATE_PENDING
    form = {"csrf_token": csrf, "amount": "2.50 USD", "reason": "ok"}
    async with client.post(f"{url}/approve", data=form) as answer:
        assert answer.status == 200 and answer.url.path.endswith("/approvals")
    decided = await console_system.vault.get_approval(name)
    assert (decided.state, decided.granted.micros) == (V.Approval.STATE_APPROVED, 2_500_000)
    async with client.post(f"{url}/deny", data={"csrf_token": csrf, "reason": "late"}) as answer:
        assert answer.status == 409  # decided once


async def test_a_resubmitted_provision_form_mints_nothing_and_shows_no_secret(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    tenant = tenant_id()
    csrf = await signed_in(client, console_system.url)
    form = {
        "csrf_token": csrf,
        "agent_id": "coder",
        "template": "policyTemplates/agent-per-vendor",
        "request_id": str(uuid.uuid4()),
    }
    url = f"{console_system.url}/tenants/{tenant}/provision"
    async with client.post(url, data=form) as answer:
        assert answer.status == 200
        first = await answer.text()
    assert first.count('class="secret mono"') == 6
    async with client.post(url, data=form) as answer:
        assert answer.status == 409
        again = await answer.text()
    assert "vk_" not in again and "Already shown" in again
    assert len([k async for k in console_system.vault.iter_keys(tenant_id=tenant)]) == 6


async def inbox_card(client: aiohttp.ClientSession, url: str, name: str) -> str:
    """The HTML of one request's card on its tenant's inbox."""
    tenant, _, approval_id = name.removeprefix("tenants/").partition("/approvals/")
    async with client.get(f"{url}/tenants/{tenant}/approvals") as answer:
        assert answer.status == 200
        page = await answer.text()
    card = re.search(rf'<article [^>]*id="{approval_id}".*?</article>', page, re.DOTALL)
    assert card, page
    return card.group(0)


async def test_an_ancestors_cap_is_the_context_of_its_descendants_request(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    vault, tenant = console_system.vault, tenant_id()
    parent = await mint(vault, tenant, "team budget")  # 100 USD a day, shared by its children
    child = await vault.mint_key(
        agent_id="worker",
        scopes=["stripe.charges.write"],
        policy=V.Policy(spend_caps=usd_cap(100 * USD).spend_caps, approval_on_denial=True),
        token=parent.secret,
    )
    sibling = await mint(vault, tenant, "sibling", parent.secret)
    assert (await authorize(vault, sibling.secret, 90 * USD, "r")).decision == V.DECISION_ALLOW
    denied = await authorize(vault, child.secret, 20 * USD, "r")
    assert denied.reason == V.DENY_REASON_SPEND_CAP_EXCEEDED and denied.approval
    await signed_in(client, console_system.url)
    card = await inbox_card(client, console_system.url, denied.approval)
    assert f">{child.key.key_id}</a>" in card
    assert f'class="capped-key" href="/tenants/{tenant}/keys/{parent.key.key_id}"' in card
    assert "(an ancestor's cap)" in card
    assert '<span class="usage">90.00 USD / 100.00 USD</span>' in card  # the parent's (the
    # worker's own cap has 100 USD left): the sibling's spend is what stopped it


async def test_a_run_caps_request_shows_the_runs_usage(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    vault, tenant, run = console_system.vault, tenant_id(), "run-" + uuid.uuid4().hex[:8]
    key = await vault.mint_key(
        tenant_id=tenant,
        agent_id="ci",
        scopes=["stripe.charges.write"],
        policy=V.Policy(
            run_spend_cap=money_pb2.Money(currency_code="USD", micros=2 * USD),
            approval_on_denial=True,
        ),
    )
    assert (await authorize(vault, key.secret, 2 * USD, run)).decision == V.DECISION_ALLOW
    denied = await authorize(vault, key.secret, USD, run)
    assert denied.reason == V.DENY_REASON_RUN_CAP_EXCEEDED and denied.approval
    await signed_in(client, console_system.url)
    card = await inbox_card(client, console_system.url, denied.approval)
    assert f'<dd class="quota">run <span class="muted">window {run}</span>' in card
    assert f">{run}</a></dd>" in card
    assert '<span class="usage">2.00 USD / 2.00 USD</span>' in card
