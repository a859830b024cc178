"""The official Anthropic SDK through the gateway, against a local stand-in of
api.anthropic.com."""

from __future__ import annotations

import uuid

import anthropic
import httpx2
import pytest

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.llm_helpers import (
    TABLE,
    anthropic_sdk,
    by_hand,
    charges,
    denial_code,
    llm_key,
)
from tests.gateway.llm_standins import ANTHROPIC_USAGE, LlmStandIn
from tests.gateway.stripe_helpers import spent, usd_cap

MODEL = "claude-sonnet-4-20250514"  # a dated snapshot of the table's claude-sonnet-4
U = ANTHROPIC_USAGE
REPORTED = by_hand("claude-sonnet-4", U["input"], U["output"], U["cache_read"], U["cache_write"])


def _ask(marker: str, mode: str = "") -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": f"say hello marker:{marker} mode:{mode}"}]


async def _key(
    tenant: str,
    connections: ConnectionsClient,
    vault: VaultClient,
    upstream: LlmStandIn,
    policy: vault_pb2.Policy | None = None,
) -> str:
    scopes = ["anthropic.messages.write"]
    return await llm_key(tenant, "anthropic", connections, vault, upstream, scopes, policy)


async def _charge(metering: MeteringClient, tenant: str) -> metering_pb2.BillingEvent:
    [event] = await charges(metering, tenant)
    return event


async def test_a_message_costs_input_cache_and_output_tokens_times_table_price(
    gateway: Gateway,
    anthropic_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, anthropic_upstream)
    marker = uuid.uuid4().hex
    async with anthropic_sdk(gateway.url, key) as client:
        message = await client.messages.create(model=MODEL, max_tokens=1024, messages=_ask(marker))
    assert (
        message.content[0].type == "text" and message.content[0].text == "Hello from the stand-in."
    )
    [seen] = anthropic_upstream.seen_by(marker)
    assert seen.headers["x-api-key"] in anthropic_upstream.accepted_secrets
    assert key not in str(seen.headers) and seen.headers["anthropic-version"]
    event = await _charge(admin_metering, tenant)
    assert event.amount.micros == REPORTED
    assert (event.input_tokens, event.output_tokens, event.cached_input_tokens) == (
        U["input"],
        U["output"],
        U["cache_read"],
    )
    assert event.attributes["cache_write_input_tokens"] == str(U["cache_write"])
    assert event.model == MODEL and event.vendor_request_id == message.id
    assert event.cost_source == f"prices:{TABLE.version}"


async def test_a_stream_arrives_event_by_event_and_is_charged_from_start_and_delta_usage(
    gateway: Gateway,
    anthropic_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, anthropic_upstream)
    marker = uuid.uuid4().hex
    gate, upstream_done = anthropic_upstream.gate(marker), anthropic_upstream.done(marker)
    kinds: list[str] = []
    async with anthropic_sdk(gateway.url, key) as client:
        stream = await client.messages.create(
            model=MODEL, max_tokens=1024, messages=_ask(marker, "wait"), stream=True
        )
        async for event in stream:
            if not kinds:
                assert event.type == "message_start" and not upstream_done.is_set()
                gate.set()
            kinds.append(event.type)
    assert kinds[-2:] == ["message_delta", "message_stop"] and upstream_done.is_set()
    charged = await _charge(admin_metering, tenant)
    assert charged.amount.micros == REPORTED and charged.attributes["usage"] == "reported"
    assert charged.output_tokens == U["output"]


async def test_a_stream_cut_after_message_start_is_charged_reported_input_and_estimated_output(
    gateway: Gateway,
    anthropic_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, anthropic_upstream)
    async with anthropic_sdk(gateway.url, key) as client:
        stream = await client.messages.create(
            model=MODEL, max_tokens=3000, messages=_ask(uuid.uuid4().hex, "cut"), stream=True
        )
        with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
            async for _event in stream:
                pass
    event = await _charge(admin_metering, tenant)
    expected = by_hand("claude-sonnet-4", U["input"], 3000, U["cache_read"], U["cache_write"])
    assert event.amount.micros == expected and event.attributes["usage"] == "estimated"
    assert (event.input_tokens, event.output_tokens) == (U["input"], 3000)


async def test_unknown_models_are_denied_and_caps_hold_before_the_upstream(
    gateway: Gateway,
    anthropic_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, anthropic_upstream, usd_cap(1_000_000))
    unknown, too_dear = uuid.uuid4().hex, uuid.uuid4().hex
    async with anthropic_sdk(gateway.url, key) as client:
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            await client.messages.create(
                model="claude-opus-9", max_tokens=10, messages=_ask(unknown)
            )
        await client.messages.create(model=MODEL, max_tokens=1024, messages=_ask(uuid.uuid4().hex))
        # Spent: REPORTED (~0.0065 USD); worst case next: 66,500 x 15 USD/M = 0.9975 USD + input.
        with pytest.raises(anthropic.APIStatusError) as denied:
            await client.messages.create(
                model=MODEL, max_tokens=66_500, messages=_ask(too_dear), timeout=30.0
            )
    assert denial_code(refused.value) == "MODEL_UNKNOWN"
    assert denied.value.status_code == 402 and denial_code(denied.value) == "SPEND_CAP_EXCEEDED"
    assert anthropic_upstream.seen_by(unknown) == [] and anthropic_upstream.seen_by(too_dear) == []
    assert await spent(admin_metering, tenant) == {"USD": REPORTED}


async def test_a_vendor_error_passes_through_and_costs_nothing(
    gateway: Gateway,
    anthropic_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, anthropic_upstream)
    async with anthropic_sdk(gateway.url, key) as client:
        with pytest.raises(anthropic.BadRequestError) as error:
            await client.messages.create(
                model=MODEL, max_tokens=10, messages=_ask(uuid.uuid4().hex, "error")
            )
    assert error.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error",
                  "message": "messages: at least one message is required"},
    }  # fmt: skip
    assert await spent(admin_metering, tenant) in ({}, {"USD": 0})
