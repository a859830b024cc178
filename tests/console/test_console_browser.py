"""The console in a real browser (Debian's Chromium via Playwright) against real Vault and
Metering: sign in, the tree, one-click stops that take effect at once, spend, the run ledger,
and the guards (CSRF, escaping, no token in any page)."""

from __future__ import annotations

import csv
import io
import uuid

from playwright.async_api import Page

from keyleash.metering.v1 import metering_pb2 as P
from keyleash.vault.v1 import vault_pb2 as V
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import SCREENSHOTS, ConsoleSystem, sign_in, tenant_id
from tests.console.helpers import USD, audited, authorize, family, mint, paid_call


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def no_token_in(page: Page) -> None:
    assert ADMIN_TOKEN not in await page.content()
    assert ADMIN_TOKEN not in page.url


async def test_sign_in_shows_a_parent_over_its_two_children(
    console_system: ConsoleSystem, page: Page
) -> None:
    tenant = tenant_id()
    keys = await family(console_system.vault, tenant)
    await sign_in(page, console_system.url)
    cookie = next(c for c in await page.context.cookies() if c["name"].startswith("keyleash"))
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in cookie["value"]
    await page.fill("input[name=tenant_id]", tenant)
    await page.click("#open-tenant")
    await page.wait_for_url(f"**/tenants/{tenant}/keys")
    rows = page.locator("table.tree tbody tr")
    assert await rows.count() == 3
    ids = [await rows.nth(n).get_attribute("data-key-id") for n in range(3)]
    assert ids[0] == keys.parent.key.key_id
    assert set(ids[1:]) == {c.key.key_id for c in keys.children}
    for n in (1, 2):  # indented under the parent
        assert await rows.nth(n).locator("td.depth-1").count() == 1
    assert await page.locator("meter").count() == 3  # a spend-cap bar per key
    await no_token_in(page)
    await shot(page, "keys")


async def test_freezing_the_parent_from_the_page_denies_a_child_at_once(
    console_system: ConsoleSystem, page: Page
) -> None:
    vault, tenant = console_system.vault, tenant_id()
    keys = await family(vault, tenant)
    child = keys.children[0]
    assert (await authorize(vault, child.secret, USD, "r")).decision == V.DECISION_ALLOW
    await sign_in(page, console_system.url)
    await page.goto(f"{console_system.url}/tenants/{tenant}/keys/{keys.parent.key.key_id}")
    await page.click("#freeze")
    assert await page.locator("table.tree tbody tr").count() == 3  # the subtree, before
    await shot(page, "confirm-freeze")
    await page.fill("#reason", "runaway agent")
    await page.click("#confirm")
    await page.wait_for_selector("#key-state")
    assert await page.inner_text("#key-state") == "frozen"
    denied = await authorize(vault, child.secret, USD, "r")
    assert denied.decision == V.DECISION_DENY
    assert denied.reason == V.DENY_REASON_KEY_FROZEN
    await page.click("#unfreeze")
    await page.click("#confirm")
    await page.wait_for_selector("#key-state")
    assert await page.inner_text("#key-state") == "active"
    assert (await authorize(vault, child.secret, USD, "r")).decision == V.DECISION_ALLOW
    await no_token_in(page)


async def test_a_revoke_needs_a_reason_and_shows_in_the_history(
    console_system: ConsoleSystem, page: Page
) -> None:
    tenant = tenant_id()
    keys = await family(console_system.vault, tenant)
    target = keys.children[1]
    await sign_in(page, console_system.url)
    await page.goto(f"{console_system.url}/tenants/{tenant}/keys/{target.key.key_id}/revoke")
    await page.fill("#reason", "secret pasted in a ticket")
    await page.click("#confirm")
    await page.wait_for_selector("#history")
    assert await page.inner_text("#key-state") == "revoked"
    assert "secret pasted in a ticket" in await page.inner_text("#history")
    stored = await console_system.vault.get_key(target.key.name)
    assert stored.state == V.Key.STATE_REVOKED
    assert stored.revoke_reason == "secret pasted in a ticket"
    await shot(page, "key")


async def test_spend_chart_and_run_ledger_csv_show_the_runs_charges(
    console_system: ConsoleSystem, page: Page
) -> None:
    system, tenant = console_system, tenant_id()
    keys = await family(system.vault, tenant)
    run = "run-" + uuid.uuid4().hex[:8]
    await paid_call(system.vault, system.metering, keys.children[0], 3 * USD, run)
    await paid_call(system.vault, system.metering, keys.children[1], 4 * USD, run)
    denied = await authorize(system.vault, keys.children[0].secret, 500 * USD, run)
    assert denied.decision == V.DECISION_DENY  # over the 100 USD cap: a decision, no charge
    await audited(system.vault, tenant, run, 3)
    await sign_in(page, system.url)
    await page.goto(f"{system.url}/tenants/{tenant}/spend?subject=run&value={run}")
    assert await page.inner_text("#spend-today") == "7.00 USD"
    bars = page.locator("#spend-chart rect.spend-bar")
    assert await bars.count() == 14
    assert (await bars.nth(13).locator("title").text_content() or "").endswith(": 7.00 USD")
    assert int(await bars.nth(13).get_attribute("height") or 0) > 0
    await shot(page, "spend")
    await page.goto(f"{system.url}/tenants/{tenant}/ledger?run={run}")
    assert await page.locator("#ledger tbody tr").count() == 5  # 3 decisions, 2 charges
    await shot(page, "ledger")
    answer = await page.request.get(f"{system.url}/tenants/{tenant}/ledger.csv?run={run}")
    assert answer.status == 200
    rows = list(csv.DictReader(io.StringIO(await answer.text())))
    listed = await system.metering.list_billing_events(
        P.ListBillingEventsRequest(filter=P.BillingEventFilter(tenant_id=tenant, agent_run_id=run))
    )
    billing = [r for r in rows if r["record"] == "billing"]
    assert [(r["id"], r["key_id"], int(r["amount_micros"]), r["trace_id"]) for r in billing] == [
        (e.event_id, e.key_id, e.amount.micros, e.trace_id) for e in listed.events
    ]
    reason = V.DenyReason.Name(denied.reason).removeprefix("DENY_REASON_")
    decisions = [r for r in rows if r["record"] == "decision"]
    assert [r["what"] for r in decisions] == ["ALLOW", "ALLOW", f"DENY {reason}"]
    assert [r["estimated_micros"] for r in decisions] == [
        str(3 * USD),
        str(4 * USD),
        str(500 * USD),
    ]
    assert [r["amount_micros"] for r in decisions[:2]] == [str(3 * USD), str(4 * USD)]
    await no_token_in(page)


async def test_a_post_without_the_csrf_token_is_refused(
    console_system: ConsoleSystem, page: Page
) -> None:
    tenant = tenant_id()
    target = await mint(console_system.vault, tenant, "csrf target")
    await sign_in(page, console_system.url)
    url = f"{console_system.url}/tenants/{tenant}/keys/{target.key.key_id}/freeze"
    answer = await page.request.post(url, form={"reason": "forged"})
    assert answer.status == 403
    assert (await answer.json())["error"]["code"] == "CSRF_TOKEN_INVALID"
    stored = await console_system.vault.get_key(target.key.name)
    assert stored.state == V.Key.STATE_ACTIVE


async def test_a_script_in_a_key_label_renders_as_text(
    console_system: ConsoleSystem, page: Page
) -> None:
    tenant = tenant_id()
    label = "<script>window.pwned = 1</script><b>bold</b>"
    target = await mint(console_system.vault, tenant, label)
    await sign_in(page, console_system.url)
    for path in ("keys", f"keys/{target.key.key_id}"):
        await page.goto(f"{console_system.url}/tenants/{tenant}/{path}")
        assert await page.evaluate("typeof window.pwned") == "undefined"
        assert await page.locator(".label").first.inner_text() == label
        assert await page.locator(".label b").count() == 0
        await no_token_in(page)


async def test_connections_take_a_secret_and_never_show_it(
    console_system: ConsoleSystem, page: Page
) -> None:
    tenant = tenant_id()
    await mint(console_system.vault, tenant, "anchor")
    secret = "sk_test_" + uuid.uuid4().hex
    await sign_in(page, console_system.url)
    await page.goto(f"{console_system.url}/tenants/{tenant}/connections")
    await page.fill("input[name=vendor]", "stripe")
    await page.fill("form.stack input[name=secret]", secret)
    async with page.expect_navigation():
        await page.click("#add-connection")
    assert "stripe" in await page.inner_text("#connections")
    assert secret not in await page.content()
    rotated = "sk_test_" + uuid.uuid4().hex
    await page.fill("#connections input[name=secret]", rotated)
    async with page.expect_navigation():
        await page.click("#connections button")
    assert rotated not in await page.content() and secret not in await page.content()
    listed = [c async for c in console_system.connections.iter_connections(tenant)]
    assert len(listed) == 1 and listed[0].rotate_time.seconds > 0
    await shot(page, "connections")
    await no_token_in(page)


async def test_audit_lists_decisions_newest_first(
    console_system: ConsoleSystem, page: Page
) -> None:
    system, tenant = console_system, tenant_id()
    keys = await family(system.vault, tenant)
    for n in range(3):
        await authorize(system.vault, keys.children[0].secret, USD, f"audit-run-{n}")
        await audited(system.vault, tenant, f"audit-run-{n}", 1)
    await sign_in(page, system.url)
    await page.goto(f"{system.url}/tenants/{tenant}/audit")
    runs = await page.locator("#audit tbody tr td:nth-child(3)").all_inner_texts()
    assert runs == ["audit-run-2", "audit-run-1", "audit-run-0"]
    await shot(page, "audit")
    await no_token_in(page)
