"""The console's exchange rates page (issue #20: console support for multi-currency caps): the
FX table in force, and an admin puts a rate in force from the page (CSRF-guarded)."""

from __future__ import annotations

from playwright.async_api import Page

from tests.console.conftest import ConsoleSystem, sign_in


async def test_the_fx_table_is_shown_and_a_rate_set_from_the_page(
    console_system: ConsoleSystem, page: Page
) -> None:
    await sign_in(page, console_system.url)
    await page.click("#nav-fx")
    rates = await page.inner_text("#rates")
    assert "EUR/USD" in rates and "shipped" in rates
    before = await page.inner_text("#fx-version")
    await page.fill("input[name=base]", "sek")
    await page.fill("input[name=quote]", "DKK")
    await page.fill("input[name=rate]", "0.655")
    async with page.expect_navigation():
        await page.click("#set-rate")
    row = page.locator("#rates tr", has_text="SEK/DKK")
    assert "0.655" in await row.inner_text() and "admin" in await row.inner_text()
    assert await page.inner_text("#fx-version") != before
    listed = await console_system.metering.list_exchange_rates()
    assert any(r.base_currency_code == "SEK" and r.rate == "0.655" for r in listed.rates)

    forged = await page.request.post(f"{console_system.url}/fx",
                                     form={"base": "SEK", "quote": "DKK", "rate": "9"})  # fmt: skip
    assert forged.status == 403
    again = await console_system.metering.list_exchange_rates()
    assert any(r.base_currency_code == "SEK" and r.rate == "0.655" for r in again.rates)
