"""The official OpenAI SDK through the gateway, against a local stand-in of api.openai.com."""

from __future__ import annotations

import json
import uuid

import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.llm_helpers import (
    TABLE,
    by_hand,
    charges,
    denial_code,
    hold_by_hand,
    llm_key,
    openai_sdk,
)
from tests.gateway.llm_standins import OPENAI_USAGE, LlmStandIn
from tests.gateway.stripe_helpers import events, spent, usd_cap

SCOPES = ["openai.chat.write", "openai.responses.write", "openai.embeddings.write"]
U = OPENAI_USAGE
REPORTED = by_hand("gpt-4o", U["prompt"] - U["cached"], U["completion"], U["cached"])


def _ask(marker: str, mode: str = "") -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": f"say hello marker:{marker} mode:{mode}"}]


async def _key(
    tenant: str,
    connections: ConnectionsClient,
    vault: VaultClient,
    upstream: LlmStandIn,
    policy: vault_pb2.Policy | None = None,
) -> str:
    return await llm_key(tenant, "openai", connections, vault, upstream, SCOPES, policy)


async def _charge(metering: MeteringClient, tenant: str) -> metering_pb2.BillingEvent:
    [event] = await charges(metering, tenant)
    return event


async def test_chat_completion_costs_reported_tokens_times_table_price(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    marker = uuid.uuid4().hex
    async with openai_sdk(gateway.url, key) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=_ask(marker), max_completion_tokens=500
        )
    assert completion.choices[0].message.content == "Hello from the stand-in."
    [seen] = openai_upstream.seen_by(marker)
    assert seen.path == "/v1/chat/completions" and key not in str(seen.headers)
    assert seen.headers["Authorization"] in {
        f"Bearer {s}" for s in openai_upstream.accepted_secrets
    }
    event = await _charge(admin_metering, tenant)
    assert event.amount.micros == REPORTED and event.amount.currency_code == "USD"
    assert (event.model, event.input_tokens, event.output_tokens, event.cached_input_tokens) == (
        "gpt-4o",
        U["prompt"] - U["cached"],
        U["completion"],
        U["cached"],
    )
    assert event.cost_source == f"prices:{TABLE.version}"
    assert event.vendor_request_id == completion.id and event.vendor == "openai"
    assert event.attributes["reasoning_tokens"] == str(U["reasoning"])
    assert event.attributes["usage"] == "reported"
    assert event.attributes["price_table"] == TABLE.version
    assert await spent(admin_metering, tenant) == {"USD": REPORTED}


async def test_a_key_capped_at_one_dollar_is_stopped_before_the_upstream_sees_the_call(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream, usd_cap(1_000_000))
    small, large = uuid.uuid4().hex, uuid.uuid4().hex
    async with openai_sdk(gateway.url, key) as client:
        await client.chat.completions.create(
            model="gpt-4o", messages=_ask(small), max_completion_tokens=1000
        )
        # Spent so far: REPORTED (0.0055 USD). Worst case of the next: 99,500 output tokens x
        # 10 USD/M = 0.995 USD plus its input (~0.0005 USD): past 1.00 USD together.
        with pytest.raises(openai.APIStatusError) as denied:
            await client.chat.completions.create(
                model="gpt-4o", messages=_ask(large), max_completion_tokens=99_500
            )
    assert denied.value.status_code == 402
    assert denial_code(denied.value) == "SPEND_CAP_EXCEEDED"
    assert len(openai_upstream.seen_by(small)) == 1 and openai_upstream.seen_by(large) == []
    assert await spent(admin_metering, tenant) == {"USD": REPORTED}


async def test_without_max_tokens_the_hold_is_the_models_documented_maximum(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    # gpt-4o may write 16,384 tokens (0.16384 USD) when the request sets no limit.
    per_call = vault_pb2.Policy(
        max_cost_per_call=money_pb2.Money(currency_code="USD", micros=150_000)
    )
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream, per_call)
    unlimited, limited = uuid.uuid4().hex, uuid.uuid4().hex
    async with openai_sdk(gateway.url, key) as client:
        with pytest.raises(openai.APIStatusError) as denied:
            await client.chat.completions.create(model="gpt-4o", messages=_ask(unlimited))
        await client.chat.completions.create(
            model="gpt-4o", messages=_ask(limited), max_tokens=2000
        )
    assert denial_code(denied.value) == "PER_CALL_CAP_EXCEEDED"
    assert openai_upstream.seen_by(unlimited) == [] and len(openai_upstream.seen_by(limited)) == 1


async def test_an_unknown_model_is_denied_and_never_forwarded(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    marker = uuid.uuid4().hex
    async with openai_sdk(gateway.url, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-9-turbo", messages=_ask(marker))
    assert denial_code(denied.value) == "MODEL_UNKNOWN"
    assert openai_upstream.seen_by(marker) == []
    assert await spent(admin_metering, tenant) == {}


async def test_a_model_allowlist_is_a_constraint_on_the_model_attribute(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    mini_only = vault_pb2.Policy(
        constraints=[
            vault_pb2.AttributeConstraint(attribute="model", allowed_values=["gpt-4o-mini"])
        ]
    )
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream, mini_only)
    refused, allowed = uuid.uuid4().hex, uuid.uuid4().hex
    async with openai_sdk(gateway.url, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(model="gpt-4o", messages=_ask(refused))
        await client.chat.completions.create(model="gpt-4o-mini", messages=_ask(allowed))
    assert denial_code(denied.value) == "CONSTRAINT_DENIED"
    assert openai_upstream.seen_by(refused) == [] and len(openai_upstream.seen_by(allowed)) == 1


async def test_a_stream_arrives_chunk_by_chunk_without_the_usage_chunk_nobody_asked_for(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    marker = uuid.uuid4().hex
    gate, upstream_done = openai_upstream.gate(marker), openai_upstream.done(marker)
    chunks: list[ChatCompletionChunk] = []
    async with openai_sdk(gateway.url, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=_ask(marker, "wait"), max_tokens=800, stream=True
        )
        async for chunk in stream:
            if not chunks:
                # The stand-in holds the rest of its answer until this gate opens.
                assert not upstream_done.is_set()
                gate.set()
            chunks.append(chunk)
    assert upstream_done.is_set()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the stand-in."
    assert all(c.choices and c.usage is None for c in chunks)  # the usage chunk was removed
    [seen] = openai_upstream.seen_by(marker)
    assert json.loads(seen.body)["stream_options"] == {"include_usage": True}
    event = await _charge(admin_metering, tenant)
    assert event.amount.micros == REPORTED and event.attributes["usage"] == "reported"
    assert event.vendor_request_id == chunks[0].id


async def test_a_caller_that_asks_for_usage_gets_the_usage_chunk(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    async with openai_sdk(gateway.url, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=_ask(uuid.uuid4().hex), max_tokens=800, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == U["prompt"]
    assert (await _charge(admin_metering, tenant)).amount.micros == REPORTED


async def test_a_stream_cut_midway_is_charged_the_estimate_not_zero(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    marker = uuid.uuid4().hex
    received: list[ChatCompletionChunk] = []
    async with openai_sdk(gateway.url, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=_ask(marker, "cut"), max_tokens=700, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        with pytest.raises(openai.APIConnectionError):
            async for chunk in stream:
                received.append(chunk)
    assert received  # some content arrived before the cut
    [seen] = openai_upstream.seen_by(marker)  # the agent's own body: nothing was injected
    event = await _charge(admin_metering, tenant)
    assert event.amount.micros == hold_by_hand("gpt-4o", len(seen.body), 700)
    assert event.attributes["usage"] == "estimated"
    assert event.attributes["outcome"] == "stream_cut_by_vendor"
    assert (event.input_tokens, event.output_tokens) == (len(seen.body), 700)


async def test_responses_and_embeddings_are_charged_from_their_usage(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    async with openai_sdk(gateway.url, key) as client:
        answer = await client.responses.create(
            model="gpt-4o-mini", input="hello", max_output_tokens=400
        )
        stream = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        kinds = [event.type async for event in stream]
        vectors = await client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert answer.output_text == "Hello from the stand-in." and kinds[-1] == "response.completed"
    assert vectors.data[0].embedding == [0.25, -0.5, 0.125]
    by_model = {
        e.model + ("/stream" if e.vendor_request_id != answer.id and "mini" in e.model else ""): e
        for e in await charges(admin_metering, tenant, 3)
    }
    mini = by_hand("gpt-4o-mini", U["prompt"] - U["cached"], U["completion"], U["cached"])
    assert by_model["gpt-4o-mini"].amount.micros == mini
    assert by_model["gpt-4o-mini/stream"].amount.micros == mini
    assert by_model["text-embedding-3-small"].amount.micros == by_hand(
        "text-embedding-3-small", U["prompt"], 0
    )


async def test_a_vendor_error_passes_through_unchanged_and_costs_nothing(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    async with openai_sdk(gateway.url, key) as client:
        with pytest.raises(openai.BadRequestError) as error:
            await client.chat.completions.create(
                model="gpt-4o", messages=_ask(uuid.uuid4().hex, "error")
            )
    assert error.value.code == "invalid_value"
    assert await spent(admin_metering, tenant) in ({}, {"USD": 0})
    [release] = await events(admin_metering, tenant)
    assert release.kind == metering_pb2.BillingEvent.KIND_RELEASE


async def test_a_stream_the_client_walks_away_from_is_still_charged(
    gateway: Gateway,
    openai_upstream: LlmStandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key = await _key(tenant, admin_connections, admin_vault, openai_upstream)
    marker = uuid.uuid4().hex
    async with openai_sdk(gateway.url, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=_ask(marker, "wait"), max_tokens=900, stream=True
        )
        async for _chunk in stream:
            break
        await stream.close()
    openai_upstream.gate(marker).set()
    event = await _charge(admin_metering, tenant)
    # Whether the vendor's usage got through before the gateway saw the agent leave depends on
    # socket buffers: it is then charged as reported, else as the estimate; never zero.
    if event.attributes["usage"] == "reported":
        assert event.amount.micros == REPORTED
    else:
        assert event.attributes["usage"] == "estimated" and event.output_tokens == 900
        assert event.amount.micros == hold_by_hand("gpt-4o", event.input_tokens, 900)
        assert event.input_tokens > len(f"say hello marker:{marker} mode:wait")
