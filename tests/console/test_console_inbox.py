"""The approvals inbox and the templates pages in a real browser (Debian's Chromium via
Playwright) against real Vault and Metering: a capped key's denial shows up with its cost
context and is approved (with another amount) or denied from the page, and an agent provisioned
from a template gets its six secrets shown once."""

from __future__ import annotations

import uuid

from playwright.async_api import Page

from keyleash.client import VaultClient
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from tests.console.conftest import SCREENSHOTS, ConsoleSystem, sign_in, tenant_id
from tests.console.helpers import USD, Minted, authorize, paid_call
from tests.console.test_console_browser import no_token_in, shot


async def capped_key(vault: VaultClient, tenant: str, daily_usd: int) -> Minted:
    """A key with a daily cap that opens an approval request when it denies."""
    minted = await vault.mint_key(
        tenant_id=tenant,
        agent_id="reporter",
        label="nightly report",
        scopes=["stripe.charges.write"],
        policy=V.Policy(
            spend_caps=[
                V.SpendCap(
                    limit=money_pb2.Money(currency_code="USD", micros=daily_usd * USD),
                    window=V.SpendCap.WINDOW_CALENDAR_DAY,
                )
            ],
            approval_on_denial=True,
        ),
    )
    return Minted(minted.key, minted.secret)


async def denied_request(system: ConsoleSystem, tenant: str, run: str) -> tuple[Minted, str]:
    """A 5 USD/day key that spent 4 USD and was denied 3 more: its approval request's name."""
    key = await capped_key(system.vault, tenant, 5)
    await paid_call(system.vault, system.metering, key, 4 * USD, run)
    denied = await authorize(system.vault, key.secret, 3 * USD, run)
    assert denied.decision == V.DECISION_DENY
    assert denied.reason == V.DENY_REASON_SPEND_CAP_EXCEEDED and denied.approval
    return key, denied.approval


async def test_a_denied_key_is_approved_from_the_inbox_with_another_amount(
    console_system: ConsoleSystem, page: Page
) -> None:
    system, tenant, run = console_system, tenant_id(), "run-" + uuid.uuid4().hex[:8]
    key, name = await denied_request(system, tenant, run)
    asked = await system.vault.get_approval(name)
    await sign_in(page, system.url)
    await page.goto(f"{system.url}/tenants/{tenant}/keys")
    await page.click("#nav-approvals")
    card = page.locator(f"article#{asked.approval_id}")
    assert await card.locator(".approval-state").inner_text() == "pending"
    assert await card.locator("a.key").inner_text() == key.key.key_id
    assert await card.locator("a.capped-key").inner_text() == key.key.key_id
    assert "spend/calendar_day" in await card.locator(".quota").inner_text()
    assert await card.locator(".usage").inner_text() == "4.00 USD / 5.00 USD"
    requested = f"{asked.amount.micros / USD:.2f} USD more"  # display only; the form is exact
    assert await card.locator(".requested").inner_text() == requested
    assert await card.locator(".run").inner_text() == (asked.agent_run_id or "-")  # a day cap
    assert await card.locator(".requested-by").inner_text() == asked.requested_by
    assert await card.locator(".reason").inner_text() == (asked.reason or "-")
    assert await card.locator(".expires").inner_text() != "-"
    assert await card.locator("input.amount").input_value() == requested.split()[0]
    await shot(page, "approvals")

    await card.locator("input.amount").fill("5")
    await card.locator("input.approve-reason").fill("month-end report")
    async with page.expect_navigation():
        await card.locator("button.approve").click()
    card = page.locator(f"article#{asked.approval_id}")
    assert await card.locator(".approval-state").inner_text() == "approved"
    assert (await card.locator(".granted").inner_text()).startswith("5.00 USD")
    assert await card.locator("button.approve").count() == 0
    decided = await system.vault.get_approval(name)
    assert decided.state == V.Approval.STATE_APPROVED
    assert (decided.granted.micros, decided.decision_reason) == (5 * USD, "month-end report")
    again = await authorize(system.vault, key.secret, 3 * USD, run)
    assert again.decision == V.DECISION_ALLOW  # 4 + 3 within 5 + the 5 granted
    await no_token_in(page)


async def test_a_denial_from_the_inbox_is_recorded_with_its_reason(
    console_system: ConsoleSystem, page: Page
) -> None:
    system, tenant, run = console_system, tenant_id(), "run-" + uuid.uuid4().hex[:8]
    key, name = await denied_request(system, tenant, run)
    approval_id = name.rpartition("/")[2]
    await sign_in(page, system.url)
    await page.goto(f"{system.url}/tenants/{tenant}/approvals?state=pending")
    card = page.locator(f"article#{approval_id}")
    await card.locator("input.deny-reason").fill("<b>not</b> this month")
    async with page.expect_navigation():
        await card.locator("button.deny").click()
    card = page.locator(f"article#{approval_id}")
    assert await card.locator(".approval-state").inner_text() == "denied"
    assert await card.locator(".decision-reason").inner_text() == "<b>not</b> this month"
    assert await card.locator(".decision-reason b").count() == 0  # escaped
    decided = await system.vault.get_approval(name)
    assert decided.state == V.Approval.STATE_DENIED
    assert decided.decision_reason == "<b>not</b> this month"
    still = await authorize(system.vault, key.secret, 3 * USD, run)
    assert still.decision == V.DECISION_DENY
    await page.goto(f"{system.url}/tenants/{tenant}/approvals?state=pending")
    assert await page.locator("#no-approvals").count() == 1
    await page.goto(f"{system.url}/tenants/{tenant}/approvals?state=denied")
    assert await page.locator(f"article#{approval_id}").count() == 1
    await no_token_in(page)


async def test_provisioning_from_the_page_shows_six_secrets_once(
    console_system: ConsoleSystem, page: Page
) -> None:
    system, tenant = console_system, tenant_id()
    own = await system.vault.create_policy_template(
        tenant_id=tenant,
        template_id="support",
        template=V.PolicyTemplate(
            display_name="Support bot <i>v2</i>",
            policy=V.Policy(max_cost_per_call=money_pb2.Money(currency_code="EUR", micros=USD)),
        ),
    )
    await sign_in(page, system.url)
    await page.goto(f"{system.url}/tenants/{tenant}/templates")
    mine = page.locator(f'tr[data-template="{own.name}"]')
    assert await mine.locator(".title").inner_text() == own.display_name  # as text
    assert await mine.locator(".title i").count() == 0
    assert await mine.locator(".limits").inner_text() == "1.00 EUR a call"
    assert await mine.locator(".pill").count() == 0  # the tenant's own, not shipped
    row = page.locator('tr[data-template="policyTemplates/agent-per-vendor"]')
    assert await row.locator(".pill").inner_text() == "shipped"
    vendors = await row.locator("ul.vendor-keys li b").all_inner_texts()
    assert len(vendors) == 6 and "openai" in vendors and "aws" in vendors
    assert "2000.00 USD / calendar_month" in await row.locator("ul.vendor-keys").inner_text()
    await shot(page, "templates")
    form = page.locator("#provision-form")
    await form.locator("input[name=agent_id]").fill("coder")
    await form.locator("select[name=template]").select_option("policyTemplates/agent-per-vendor")
    await form.locator("input[name=label]").fill("coder <i>v2</i>")
    async with page.expect_navigation():
        await page.click("#provision")
    assert "Shown only now" in await page.inner_text("#shown-once")
    rows = page.locator("#minted tbody tr")
    assert await rows.count() == 6
    secrets = [await rows.nth(n).locator("input.secret").input_value() for n in range(6)]
    shown_ids = [await rows.nth(n).get_attribute("data-key-id") or "" for n in range(6)]
    assert await page.locator("#minted .label i").count() == 0  # the label is text
    for secret, key_id in zip(secrets, shown_ids, strict=True):
        valid = await system.vault.validate_key(V.ValidateKeyRequest(key=secret))
        assert valid.valid and valid.key.key_id == key_id and valid.key.agent_id == "coder"
        assert len(valid.key.policy.allowed_vendors) == 1
        assert secret not in page.url
    await page.screenshot(  # the README's picture, its secrets masked
        path=str(SCREENSHOTS / "provisioned.png"), full_page=True, mask=[rows.locator("input")]
    )

    await page.reload()  # resubmits the form: the secrets are not shown again
    content = await page.content()
    assert not [s for s in secrets if s in content]
    assert await page.locator("#already-shown").count() == 1
    listed = [k async for k in system.vault.iter_keys(tenant_id=tenant)]
    assert sorted(k.key_id for k in listed) == sorted(shown_ids)  # minted once
    for path in ("templates", "keys"):
        await page.goto(f"{system.url}/tenants/{tenant}/{path}")
        content = await page.content()
        assert not [s for s in secrets if s in content]
    await no_token_in(page)


async def test_a_key_minted_from_a_template_is_shown_once(
    console_system: ConsoleSystem, page: Page
) -> None:
    system, tenant = console_system, tenant_id()
    await sign_in(page, system.url)
    await page.goto(f"{system.url}/tenants/{tenant}/templates")
    form = page.locator("#mint-form")
    await form.locator("input[name=agent_id]").fill("ci")
    await form.locator("select[name=template]").select_option("policyTemplates/ci-agent")
    async with page.expect_navigation():
        await page.click("#mint")
    rows = page.locator("#minted tbody tr")
    assert await rows.count() == 1
    secret = await rows.first.locator("input.secret").input_value()
    valid = await system.vault.validate_key(V.ValidateKeyRequest(key=secret))
    assert valid.valid and valid.key.agent_id == "ci"
    assert valid.key.policy.run_spend_cap.micros == 20 * USD
    await page.reload()
    assert secret not in await page.content()
    await no_token_in(page)
