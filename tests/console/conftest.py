"""Fixtures of the console tests: Vault and Metering with a secrets key (for connections), the
console served on 127.0.0.1 as `keyleash up` serves it, admin clients, and Debian's Chromium
driven by Playwright (async API: the browser and the servers share the test loop)."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Response, async_playwright
from playwright.async_api import Error as PlaywrightError

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash_console.embedded import RunningConsole, serve_console
from keyleash_console.settings import ConsoleSettings
from metering_service.server import create_server as create_metering
from metering_service.settings import MeteringSettings
from tests.conftest import ADMIN_TOKEN, Stores, service_env
from vault_service.server import create_server as create_vault
from vault_service.settings import VaultSettings

CHROMIUM = "/usr/bin/chromium"
# Without the network flags Chromium's own connections are refused by the closed network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRETS_KEY = base64.b64encode(os.urandom(32)).decode()
# The README's screenshots: KEYLEASH_CONSOLE_SCREENSHOTS=docs/console refreshes them; otherwise
# they go to a scratch dir, so a test run leaves the work tree clean.
SCREENSHOTS = Path(
    os.environ.get("KEYLEASH_CONSOLE_SCREENSHOTS")
    or tempfile.mkdtemp(prefix="keyleash-console-shots-")
).resolve()


@dataclass
class ConsoleSystem:
    url: str
    vault: VaultClient
    metering: MeteringClient
    connections: ConnectionsClient
    settings: ConsoleSettings


@pytest.fixture(scope="session")
async def console_system(stores: Stores) -> AsyncIterator[ConsoleSystem]:
    env = service_env(stores) | {"KEYLEASH_SECRETS_KEY": SECRETS_KEY}
    vault = await create_vault(VaultSettings.from_env(env), "127.0.0.1:0")
    metering = await create_metering(MeteringSettings.from_env(env), "127.0.0.1:0")
    settings = ConsoleSettings(
        listen="127.0.0.1:0",
        vault_target=f"127.0.0.1:{vault.port}",
        metering_target=f"127.0.0.1:{metering.port}",
        keys_page_size=20,
    )
    console: RunningConsole = await serve_console(settings)
    try:
        async with (
            VaultClient(settings.vault_target, token=ADMIN_TOKEN) as admin_vault,
            MeteringClient(settings.metering_target, token=ADMIN_TOKEN) as admin_metering,
            ConnectionsClient(settings.vault_target, token=ADMIN_TOKEN) as admin_connections,
        ):
            yield ConsoleSystem(
                f"http://127.0.0.1:{console.port}",
                admin_vault,
                admin_metering,
                admin_connections,
                settings,
            )
    finally:
        await console.stop()
        await vault.stop(1)
        await metering.stop(1)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing; run as root: apt-get install -y chromium")
    # Playwright gives every launch a fresh --user-data-dir of its own (and refuses one in args).
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context; every page and CSV it received is checked for the admin token."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = await context.new_page()
    bodies: list[str] = []

    async def keep(response: Response) -> None:
        kind = response.headers.get("content-type", "")
        if kind.startswith(("text/", "application/json")) and response.status != 303:
            with contextlib.suppress(PlaywrightError):  # a body gone with its page
                bodies.append(await response.text())

    opened.on("response", keep)
    try:
        yield opened
    finally:
        await context.close()
    assert bodies, "no page was checked"
    assert not [body for body in bodies if ADMIN_TOKEN in body]


async def sign_in(page: Page, url: str) -> None:
    await page.goto(f"{url}/signin")
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("#signin")
    await page.wait_for_url(f"{url}/")


def tenant_id() -> str:
    return "console-" + uuid.uuid4().hex[:10]
