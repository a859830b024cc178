"""Fixtures of the usage webhook tests: the receiver served in-process on port 0 over the suite's
Vault and Metering (tests/conftest.py), a tenant with a signing secret and a key, and a helper
that signs deliveries with the standardwebhooks package itself."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from keyleash.client import MeteringClient, VaultClient
from keyleash_usage_hooks.app import create_app
from keyleash_usage_hooks.settings import UsageHooksSettings
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN, System
from tests.gateway.standins import serve

# gpt-4o in metering_service/pricing/prices.json: micros per million tokens.
GPT_4O = (2_500_000, 10_000_000, 1_250_000)


def cost_micros(input_tokens: int, output_tokens: int, cached: int) -> int:
    """tokens x table price, rounded up to the micro once per event (domain/pricing.py)."""
    scaled = input_tokens * GPT_4O[0] + output_tokens * GPT_4O[1] + cached * GPT_4O[2]
    return -(-scaled // 1_000_000)


@dataclass
class Receiver:
    url: str
    settings: UsageHooksSettings


@dataclass
class HookTenant:
    tenant_id: str
    secret: str
    key_id: str


@pytest.fixture(scope="session")
async def receiver(system: System) -> AsyncIterator[Receiver]:
    settings = UsageHooksSettings(
        listen="127.0.0.1:0",
        metering_target=system.metering_address,
        service_token=SERVICE_TOKEN,
        vault_target=system.vault_address,
        keyleash_timeout_seconds=10.0,
    )
    runner, url = await serve(create_app(settings))
    try:
        yield Receiver(url, settings)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def admin_vault(system: System) -> AsyncIterator[VaultClient]:
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as client:
        yield client


@pytest.fixture(scope="session")
async def admin_metering(system: System) -> AsyncIterator[MeteringClient]:
    async with MeteringClient(system.metering_address, token=ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
async def hook_tenant(
    tenant: str, admin_vault: VaultClient, admin_metering: MeteringClient
) -> HookTenant:
    created = await admin_metering.create_usage_webhook_secret(tenant)
    minted = await admin_vault.mint_key(tenant_id=tenant, agent_id="llm-agent")
    return HookTenant(tenant, created.signing_secret, minted.key.key_id)


def usage(key_id: str, i: int, **extra: Any) -> dict[str, Any]:
    """Event i of a test: distinct token counts so each has its own price."""
    return {
        "id": f"evt-{i}",
        "key_id": key_id,
        "model": "gpt-4o",
        "input_tokens": 1000 + i,
        "output_tokens": 100 + 7 * i,
        "cached_input_tokens": 3 * i,
        **extra,
    }


def expected_micros(indexes: Sequence[int]) -> int:
    return sum(cost_micros(1000 + i, 100 + 7 * i, 3 * i) for i in indexes)


def signed(
    secret: str,
    body: bytes,
    *,
    webhook_id: str | None = None,
    when: datetime | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers made by the reference package."""
    when = when or datetime.now(UTC)
    msg_id = webhook_id or "msg_" + uuid.uuid4().hex
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


async def post(
    url: str,
    tenant_id: str,
    body: bytes,
    headers: dict[str, str],
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/v1/tenants/{tenant_id}/usage-events", data=body, headers=headers
        ) as response:
            assert response.content_type == "application/json"
            return response.status, json.loads(await response.read())


def batch(events: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


MINUTE = timedelta(minutes=1)
