"""The inbox's and the templates' forms without a browser: a POST without the session's CSRF
token changes nothing, a denial needs a reason, a grant needs a sane amount."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from keyleash.vault.v1 import vault_pb2 as V
from tests.console.conftest import ConsoleSystem, tenant_id
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
