"""What the OpenAI and Anthropic gateway tests share: a tenant with a connection and a key, the
SDKs pointed at the gateway, and prices computed by hand from the shipped table."""

from __future__ import annotations

import asyncio
import json
import secrets

import anthropic
import openai

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_core.llm_prices import load_price_table
from tests.gateway.llm_standins import LlmStandIn
from tests.gateway.stripe_helpers import events

TABLE = load_price_table()


async def llm_key(
    tenant: str,
    vendor: str,
    connections: ConnectionsClient,
    vault: VaultClient,
    upstream: LlmStandIn,
    scopes: list[str],
    policy: vault_pb2.Policy | None = None,
) -> str:
    """A connection of `tenant` to the stand-in and a key with `scopes`; returns the vault key."""
    secret = f"sk-{vendor}-" + secrets.token_hex(16)
    upstream.accepted_secrets.add(secret)
    await connections.create_connection(
        tenant_id=tenant,
        connection=vault_pb2.Connection(vendor=vendor, base_url=upstream.url),
        secret=secret,
    )
    minted = await vault.mint_key(
        tenant_id=tenant, agent_id="llm-agent", scopes=scopes, policy=policy or vault_pb2.Policy()
    )
    return minted.secret


def openai_sdk(gateway_url: str, key: str) -> openai.AsyncOpenAI:
    """The one-line setup: the gateway as base URL, the vault key as API key."""
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/openai/v1", api_key=key, max_retries=0)


def anthropic_sdk(gateway_url: str, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=f"{gateway_url}/anthropic", api_key=key, max_retries=0)


def by_hand(model: str, uncached: int, output: int, cached: int = 0, written: int = 0) -> int:
    """tokens x table price, rounded up to the micro, written out independently of the code."""
    p = TABLE.models[model]
    scaled = (
        uncached * p.input_per_million_micros
        + output * p.output_per_million_micros
        + cached * p.cached_input_per_million_micros
        + written * p.cache_write_input_per_million_micros
    )
    return -(-scaled // 1_000_000)


def hold_by_hand(model: str, body_bytes: int, output: int) -> int:
    """The documented hold: body bytes as input tokens at the dearer input price, plus output."""
    p = TABLE.models[model]
    dearest = max(p.input_per_million_micros, p.cache_write_input_per_million_micros)
    return -(-(body_bytes * dearest + output * p.output_per_million_micros) // 1_000_000)


def denial_code(error: openai.APIStatusError | anthropic.APIStatusError) -> str:
    body = json.loads(error.response.text)
    return str(body["error"]["code"])


async def charges(
    metering: MeteringClient, tenant: str, expected: int = 1
) -> list[metering_pb2.BillingEvent]:
    """The tenant's charge events once `expected` of them are recorded. A streamed answer is
    charged when its stream has ended, which the agent may see a moment before the commit; the
    wait is bounded by the test timeout, and its length is never asserted."""
    while True:
        found = [
            e
            for e in await events(metering, tenant)
            if e.kind == metering_pb2.BillingEvent.KIND_CHARGE
        ]
        if len(found) >= expected:
            return found
        await asyncio.sleep(0.01)
