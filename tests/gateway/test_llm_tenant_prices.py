"""A tenant's own model price (Metering's SetTenantModelPrice) holds and charges LLM calls
through the gateway, exactly as RecordUsage would price the same tokens."""

from __future__ import annotations

import uuid

import openai
import pytest

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.metering.v1 import metering_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.llm_helpers import (
    anthropic_sdk,
    charges,
    denial_code,
    hold_by_hand,
    llm_key,
    openai_sdk,
)
from tests.gateway.llm_standins import ANTHROPIC_USAGE, OPENAI_USAGE, LlmStandIn
from tests.gateway.stripe_helpers import spent, usd_cap

# Deliberately unlike any table price, so a charge at the table's price cannot pass.
INPUT, OUTPUT, CACHED = 7_000_000, 41_000_000, 700_000  # micros per million tokens


def _by_tenant_price(uncached: int, output: int, cached: int, written: int = 0) -> int:
    """tokens x the tenant's price, up to the micro; cache writes at its input price (a tenant
    price has none of its own), written out independently of the code."""
    scaled = (uncached + written) * INPUT + output * OUTPUT + cached * CACHED
    return -(-scaled // 1_000_000)


async def _set_price(metering: MeteringClient, tenant: str, model: str, output: int) -> None:
    await metering.set_tenant_model_price(
        tenant_id=tenant,
        model=model,
        input_per_million_micros=INPUT,
        output_per_million_micros=output,
        cached_input_per_million_micros=CACHED,
    )


async def _charge(metering: MeteringClient, tenant: str) -> metering_pb2.BillingEvent:
    [event] = await charges(metering, tenant)
    return event


async def test_an_openai_call_is_charged_at_the_tenants_own_price(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    await _set_price(admin_metering, tenant, "gpt-4o", OUTPUT)
    scopes = ["openai.chat.write"]
    key = await llm_key(tenant, "openai", admin_connections, admin_vault, openai_upstream, scopes)
    marker = uuid.uuid4().hex
    async with openai_sdk(gateway.url, key) as client:
        await client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": f"hello marker:{marker} mode:"}],
            max_completion_tokens=500,
        )
    u = OPENAI_USAGE
    event = await _charge(admin_metering, tenant)
    assert event.amount.micros == _by_tenant_price(
        u["prompt"] - u["cached"], u["completion"], u["cached"]
    )
    assert event.cost_source == f"tenant:{tenant}"
    assert await spent(admin_metering, tenant) == {"USD": event.amount.micros}


async def test_an_anthropic_call_is_charged_at_the_tenants_own_price(
    gateway: Gateway,
    anthropic_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    # A dated snapshot is priced as its model, at the tenant's price for that model.
    await _set_price(admin_metering, tenant, "claude-sonnet-4", OUTPUT)
    scopes = ["anthropic.messages.write"]
    key = await llm_key(
        tenant, "anthropic", admin_connections, admin_vault, anthropic_upstream, scopes
    )
    marker = uuid.uuid4().hex
    async with anthropic_sdk(gateway.url, key) as client:
        await client.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=1024,
            messages=[{"role": "user", "content": f"hello marker:{marker} mode:"}],
        )
    u = ANTHROPIC_USAGE
    event = await _charge(admin_metering, tenant)
    assert event.amount.micros == _by_tenant_price(
        u["input"], u["output"], u["cache_read"], u["cache_write"]
    )
    assert event.cost_source == f"tenant:{tenant}"


async def test_the_hold_is_priced_at_the_tenants_price_before_the_upstream_sees_anything(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    dear = 1_000_000_000  # 1,000 USD per million output tokens
    await _set_price(admin_metering, tenant, "gpt-4o", dear)
    scopes = ["openai.chat.write"]
    key = await llm_key(
        tenant,
        "openai",
        admin_connections,
        admin_vault,
        openai_upstream,
        scopes,
        usd_cap(1_000_000),
    )
    marker = uuid.uuid4().hex
    ask = f"hello marker:{marker} mode:"
    # At the table's price this worst case (1,000 output tokens) is about 0.01 USD, well inside
    # the 1.00 USD cap; at the tenant's it is 1.00 USD plus the input: over the cap.
    assert hold_by_hand("gpt-4o", 200, 1_000) < 100_000
    async with openai_sdk(gateway.url, key) as client:
        with pytest.raises(openai.APIStatusError) as denied:
            await client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": ask}],
                max_completion_tokens=1_000,
            )
    assert denied.value.status_code == 402 and denial_code(denied.value) == "SPEND_CAP_EXCEEDED"
    assert openai_upstream.seen_by(marker) == []
    assert await spent(admin_metering, tenant) in ({}, {"USD": 0})


async def test_a_tenant_without_its_own_price_pays_the_table(
    gateway: Gateway,
    anthropic_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    # Another tenant's price must not leak into this one's.
    await _set_price(admin_metering, f"{tenant}-other", "claude-sonnet-4", OUTPUT)
    scopes = ["anthropic.messages.write"]
    key = await llm_key(
        tenant, "anthropic", admin_connections, admin_vault, anthropic_upstream, scopes
    )
    async with anthropic_sdk(gateway.url, key) as client:
        await client.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello marker:0 mode:"}],
        )
    event = await _charge(admin_metering, tenant)
    assert event.cost_source.startswith("prices:")
