"""The console's guards without a browser: sign-in, sessions, CSRF, headers, secrets search, and
Keyleash errors as pages (aiohttp's client against the served console)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from keyleash.vault.v1 import vault_pb2 as V
from keyleash_console.embedded import serve_console
from keyleash_console.pages_keys import MAX_FAILURES_PER_MINUTE
from keyleash_console.sessions import COOKIE_NAME
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN
from tests.console.conftest import ConsoleSystem, tenant_id
from tests.console.helpers import USD, audited, authorize, family, mint, paid_call

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield session


async def signed_in(client: aiohttp.ClientSession, url: str) -> str:
    """Signs in; the CSRF token of the session."""
    async with client.post(f"{url}/signin", data={"token": ADMIN_TOKEN}) as answer:
        assert answer.status == 200, await answer.text()  # followed the 303 to /
        page = await answer.text()
    match = _CSRF.search(page)
    assert match, page
    return match.group(1)


async def test_pages_need_a_session(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    url = console_system.url
    async with client.get(f"{url}/tenants/t/keys", allow_redirects=False) as answer:
        assert answer.status == 303 and answer.headers["Location"] == "/signin"
    async with client.post(f"{url}/tenants/t/keys/k/revoke", data={"reason": "x"}) as answer:
        assert answer.status == 401
        assert (await answer.json())["error"]["code"] == "SESSION_REQUIRED"


@pytest.mark.parametrize("token", ["wrong", SERVICE_TOKEN, "vk_not_an_admin", ""])
async def test_only_an_admin_token_signs_in(
    console_system: ConsoleSystem, client: aiohttp.ClientSession, token: str
) -> None:
    async with client.post(
        f"{console_system.url}/signin", data={"token": token}, allow_redirects=False
    ) as answer:
        assert answer.status == 401
        page = await answer.text()
    assert "not an admin token" in page
    assert not [c for c in client.cookie_jar if c.key == COOKIE_NAME]
    if token:
        assert token not in page


async def test_every_page_is_sent_with_a_strict_policy(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    await signed_in(client, console_system.url)
    tenant = tenant_id()
    await mint(console_system.vault, tenant, "headers")
    for path in ("/", "/signin", f"/tenants/{tenant}/keys", f"/tenants/{tenant}/audit"):
        async with client.get(f"{console_system.url}{path}") as answer:
            assert answer.status == 200, path
            policy = answer.headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy
            assert "'unsafe-inline'" not in policy
            assert answer.headers["X-Frame-Options"] == "DENY"
            assert answer.headers["Cache-Control"] == "no-store"
            page = await answer.text()
            assert "<script" not in page and " style=" not in page and ADMIN_TOKEN not in page


async def test_a_stale_csrf_token_is_refused_and_sign_out_ends_the_session(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    url = console_system.url
    csrf = await signed_in(client, url)
    async with client.post(f"{url}/signout", data={"csrf_token": csrf + "x"}) as answer:
        assert answer.status == 403
    async with client.post(f"{url}/signout", data={"csrf_token": csrf}) as answer:
        assert answer.status == 200 and answer.url.path == "/signin"
    async with client.get(f"{url}/", allow_redirects=False) as answer:
        assert answer.status == 303


async def test_a_pasted_secret_finds_its_key_and_is_never_shown_back(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    tenant = tenant_id()
    target = await mint(console_system.vault, tenant, "found by secret")
    csrf = await signed_in(client, console_system.url)
    async with client.post(
        f"{console_system.url}/tenants/{tenant}/search",
        data={"csrf_token": csrf, "secret": target.secret},
    ) as answer:
        assert answer.status == 200
        assert answer.url.path == f"/tenants/{tenant}/keys/{target.key.key_id}"
        assert target.secret not in str(answer.url)
        page = await answer.text()
    assert target.key.key_id in page and target.secret not in page


async def test_a_revoke_without_a_reason_changes_nothing(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    tenant = tenant_id()
    target = await mint(console_system.vault, tenant, "kept")
    csrf = await signed_in(client, console_system.url)
    path = f"/tenants/{tenant}/keys/{target.key.key_id}/revoke"
    async with client.post(f"{console_system.url}{path}", data={"csrf_token": csrf}) as answer:
        assert answer.status == 400
        assert "needs a reason" in await answer.text()
    stored = await console_system.vault.get_key(target.key.name)
    assert stored.state == V.Key.STATE_ACTIVE


async def test_an_unknown_key_is_a_404_page(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    await signed_in(client, console_system.url)
    tenant = tenant_id()
    async with client.get(f"{console_system.url}/tenants/{tenant}/keys/k_nope") as answer:
        assert answer.status == 404
        page = await answer.text()
    assert "Traceback" not in page and 'id="error-message"' in page


async def test_the_keys_page_is_paginated(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    tenant = tenant_id()
    page_size = console_system.settings.keys_page_size
    minted = {
        (await mint(console_system.vault, tenant, f"k{n}")).key.key_id for n in range(page_size + 3)
    }
    await signed_in(client, console_system.url)
    seen: set[str] = set()
    link = f"/tenants/{tenant}/keys"
    pages = 0
    while link:
        async with client.get(f"{console_system.url}{link}") as answer:
            page = await answer.text()
        pages += 1
        seen |= set(re.findall(r'data-key-id="([^"]+)"', page))
        following = re.search(r'id="next-page" href="([^"]+)"', page)
        link = (
            f"/tenants/{tenant}/keys" + following.group(1).replace("&amp;", "&")
            if following
            else ""
        )
    assert pages == 2 and seen == minted


async def test_guessing_tokens_is_stopped_at_the_console(console_system: ConsoleSystem) -> None:
    """Past 10 failures a minute even the right token waits: the guesses never reach the
    services, which would otherwise lock out every client on the console's address."""
    own = await serve_console(console_system.settings)  # its own counters
    url = f"http://127.0.0.1:{own.port}"
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(MAX_FAILURES_PER_MINUTE):
                async with client.post(f"{url}/signin", data={"token": "guess"}) as answer:
                    assert answer.status == 401
            async with client.post(
                f"{url}/signin", data={"token": ADMIN_TOKEN}, allow_redirects=False
            ) as answer:
                assert answer.status == 429
    finally:
        await own.stop()


async def test_the_keys_page_filters_by_agent_state_and_run(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    system, tenant = console_system, tenant_id()
    keys = await family(system.vault, tenant)
    first, second = keys.children
    await authorize(system.vault, second.secret, USD, "filter-run")
    await audited(system.vault, tenant, "filter-run", 1)
    await system.vault.freeze_key(name=first.key.name, reason="filter test")
    await signed_in(client, system.url)

    async def shown(query: str) -> set[str]:
        async with client.get(f"{system.url}/tenants/{tenant}/keys?{query}") as answer:
            assert answer.status == 200
            return set(re.findall(r'data-key-id="([^"]+)"', await answer.text()))

    assert await shown("agent=worker-1") == {first.key.key_id}
    assert await shown("state=frozen") == {first.key.key_id}
    assert await shown("run=filter-run") == {second.key.key_id}


async def test_a_form_posted_from_another_origin_is_refused(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    """Even with the session's CSRF token, and for sign-in too (which has no session yet)."""
    csrf = await signed_in(client, console_system.url)
    evil = {"Origin": "http://evil.example"}
    async with client.post(
        f"{console_system.url}/signout", data={"csrf_token": csrf}, headers=evil
    ) as answer:
        assert answer.status == 403
        assert (await answer.json())["error"]["code"] == "CROSS_ORIGIN"
    async with client.post(
        f"{console_system.url}/signin", data={"token": ADMIN_TOKEN}, headers=evil
    ) as answer:
        assert answer.status == 403
    async with client.get(f"{console_system.url}/", allow_redirects=False) as answer:
        assert answer.status == 200  # still signed in: the refused sign-out did nothing


async def test_spend_per_tenant_key_agent_and_run(
    console_system: ConsoleSystem, client: aiohttp.ClientSession
) -> None:
    system, tenant = console_system, tenant_id()
    keys = await family(system.vault, tenant)
    await paid_call(system.vault, system.metering, keys.children[0], 2 * USD, "spend-a")
    await paid_call(system.vault, system.metering, keys.children[1], 5 * USD, "spend-b")
    await signed_in(client, system.url)

    async def today(query: str) -> str:
        async with client.get(f"{system.url}/tenants/{tenant}/spend?{query}") as answer:
            assert answer.status == 200
            match = re.search(r'id="spend-today">([^<]*)<', await answer.text())
        assert match
        return match.group(1)

    assert await today("") == "7.00 USD"
    assert await today(f"subject=key&value={keys.parent.key.key_id}") == "7.00 USD"
    assert await today(f"subject=key&value={keys.children[1].key.key_id}") == "5.00 USD"
    assert await today("subject=agent&value=worker-1") == "2.00 USD"
    assert await today("subject=run&value=spend-b") == "5.00 USD"


async def test_secure_cookies_when_configured(console_system: ConsoleSystem) -> None:
    own = await serve_console(replace(console_system.settings, secure_cookies=True))
    try:
        async with aiohttp.ClientSession() as client:
            async with client.post(
                f"http://127.0.0.1:{own.port}/signin",
                data={"token": ADMIN_TOKEN},
                allow_redirects=False,
            ) as answer:
                assert answer.status == 303
                cookie = answer.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert re.search(r"Max-Age=\d+", cookie)
    finally:
        await own.stop()
