"""Fixtures of the gateway tests: Vault and Metering with a secrets key, their clients.

The servers run in-process on port 0 on the suite's own Redis and Postgres (tests/conftest.py);
a second pair, so the rest of the suite keeps running without KEYLEASH_SECRETS_KEY.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash_gateway.app import create_app
from keyleash_gateway.settings import GatewaySettings
from metering_service.server import create_server as create_metering
from metering_service.settings import MeteringSettings
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN, Stores, service_env
from tests.gateway.llm_standins import LlmStandIn, anthropic_app, openai_app
from tests.gateway.standins import StandIn, resend_app, serve, stripe_app, twilio_app
from tests.gateway.stripe_helpers import OPEN_SESSIONS
from vault_service.server import create_server as create_vault
from vault_service.settings import VaultSettings

SECRETS_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def close_sdk_sessions() -> Iterator[None]:
    """Closes the HTTP sessions the vendor SDKs opened during the test."""
    yield
    while OPEN_SESSIONS:
        OPEN_SESSIONS.pop().close()


@dataclass
class SealedSystem:
    vault_address: str
    metering_address: str
    env: dict[str, str]


@pytest.fixture(scope="session")
async def sealed_system(stores: Stores) -> AsyncIterator[SealedSystem]:
    env = service_env(stores) | {"KEYLEASH_SECRETS_KEY": SECRETS_KEY}
    vault = await create_vault(VaultSettings.from_env(env), "127.0.0.1:0")
    metering = await create_metering(MeteringSettings.from_env(env), "127.0.0.1:0")
    try:
        yield SealedSystem(f"127.0.0.1:{vault.port}", f"127.0.0.1:{metering.port}", env)
    finally:
        await vault.stop(1)
        await metering.stop(1)


@pytest.fixture(scope="session")
async def admin_connections(sealed_system: SealedSystem) -> AsyncIterator[ConnectionsClient]:
    async with ConnectionsClient(sealed_system.vault_address, token=ADMIN_TOKEN) as client:
        yield client


@pytest.fixture(scope="session")
async def service_connections(sealed_system: SealedSystem) -> AsyncIterator[ConnectionsClient]:
    async with ConnectionsClient(sealed_system.vault_address, token=SERVICE_TOKEN) as client:
        yield client


@pytest.fixture(scope="session")
async def admin_vault(sealed_system: SealedSystem) -> AsyncIterator[VaultClient]:
    async with VaultClient(sealed_system.vault_address, token=ADMIN_TOKEN) as client:
        yield client


@pytest.fixture(scope="session")
async def admin_metering(sealed_system: SealedSystem) -> AsyncIterator[MeteringClient]:
    async with MeteringClient(sealed_system.metering_address, token=ADMIN_TOKEN) as client:
        yield client


@dataclass
class Gateway:
    url: str
    settings: GatewaySettings


@pytest.fixture(scope="session")
async def gateway(sealed_system: SealedSystem) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        vault_target=sealed_system.vault_address,
        metering_target=sealed_system.metering_address,
        service_token=SERVICE_TOKEN,
        max_body_bytes=64 * 1024,
        upstream_timeout_seconds=2.0,
    )
    runner, url = await serve(create_app(settings))
    try:
        yield Gateway(url, settings)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def stripe_upstream() -> AsyncIterator[StandIn]:
    state = StandIn(url="", accepted_secrets=set())
    runner, url = await serve(stripe_app(state))
    state.url = url
    try:
        yield state
    finally:
        state.release_slow.set()
        await runner.cleanup()


@pytest.fixture(scope="session")
async def resend_upstream() -> AsyncIterator[StandIn]:
    state = StandIn(url="", accepted_secrets=set())
    runner, url = await serve(resend_app(state))
    state.url = url
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def twilio_upstream() -> AsyncIterator[StandIn]:
    state = StandIn(url="", accepted_secrets=set())
    runner, url = await serve(twilio_app(state))
    state.url = url
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def openai_upstream() -> AsyncIterator[LlmStandIn]:
    state = LlmStandIn(url="", accepted_secrets=set())
    runner, url = await serve(openai_app(state))
    state.url = url
    try:
        yield state
    finally:
        for gate in state.gates.values():
            gate.set()
        await runner.cleanup()


@pytest.fixture(scope="session")
async def anthropic_upstream() -> AsyncIterator[LlmStandIn]:
    state = LlmStandIn(url="", accepted_secrets=set())
    runner, url = await serve(anthropic_app(state))
    state.url = url
    try:
        yield state
    finally:
        for gate in state.gates.values():
            gate.set()
        await runner.cleanup()
