"""The MCP server over streamable HTTP (uvicorn in this process) and over stdio (a subprocess),
against the real Vault and Metering; clients are the official `mcp` SDK's."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from keyleash.client import VaultClient
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_mcp.app import PATH, McpSettings, http_server
from tests.conftest import ADMIN_TOKEN, System

Connect = Callable[[str], AbstractAsyncContextManager[Client]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
async def mcp_url(system: System) -> AsyncIterator[str]:
    settings = McpSettings(
        system.vault_address, system.metering_address, f"127.0.0.1:{_free_port()}"
    )
    server, tools = http_server(settings)
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        assert not task.done(), "the MCP server exited"
        await asyncio.sleep(0.025)
    try:
        yield f"http://{settings.listen}{PATH}"
    finally:
        server.should_exit = True
        await task
        await tools.vault.close()
        await tools.metering.close()


@pytest.fixture
def over_http(mcp_url: str) -> Connect:
    """A client of the HTTP server sending `key` as its Bearer header."""

    @asynccontextmanager
    async def connect(key: str) -> AsyncIterator[Client]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            async with Client(streamable_http_client(mcp_url, http_client=http)) as client:
                yield client

    return connect


@pytest.fixture
def over_stdio(system: System) -> Connect:
    """`python -m keyleash_mcp` as a subprocess holding `key` in KEYLEASH_TOKEN."""

    @asynccontextmanager
    async def connect(key: str) -> AsyncIterator[Client]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")} | {
            "KEYLEASH_TOKEN": key,
            "KEYLEASH_VAULT_TARGET": system.vault_address,
            "KEYLEASH_METERING_TARGET": system.metering_address,
        }
        params = StdioServerParameters(command=sys.executable, args=["-m", "keyleash_mcp"], env=env)
        async with Client(params) as client:
            yield client

    return connect


@pytest.fixture
async def admin_vault(system: System) -> AsyncIterator[VaultClient]:
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as vault:
        yield vault


async def mint_parent(vault: VaultClient, tenant: str, **policy: Any) -> V.MintKeyResponse:
    return await vault.mint_key(
        tenant_id=tenant,
        agent_id="planner",
        scopes=["api.call", "stripe.charges.write"],
        policy=V.Policy(**policy),
    )
