"""A vault of the approval tests' own, on the suite's stores, deciding on a clock the tests move
(the day resets by moving it, not by waiting)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from aiohttp import web

from keyleash.vault.v1 import vault_pb2_grpc
from keyleash_approvals.app import create_app
from keyleash_approvals.settings import ApprovalsSettings
from tests.conftest import SERVICE_TOKEN, Stores, service_env
from vault_service.server import create_server as create_vault
from vault_service.settings import VaultSettings

DAY_MS = 24 * 3600 * 1000


@dataclass
class MovableClock:
    """The vault's clock in these tests: starts at the real time, moves when told."""

    now: int

    def now_ms(self) -> int:
        return self.now

    def next_day(self) -> None:
        """To one minute past the next UTC midnight: every day window resets."""
        self.now = (self.now // DAY_MS + 1) * DAY_MS + 60_000


@dataclass
class ClockedVault:
    stub: Any
    clock: MovableClock
    address: str


@pytest.fixture
async def clocked_vault(stores: Stores) -> AsyncIterator[ClockedVault]:
    # Noon of today's UTC day, so a test has half a day before it moves to the next one.
    clock = MovableClock(int(time.time() * 1000) // DAY_MS * DAY_MS + DAY_MS // 2)
    server = await create_vault(
        VaultSettings.from_env(service_env(stores)), "127.0.0.1:0", clock=clock
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield ClockedVault(
            vault_pb2_grpc.VaultServiceStub(channel), clock, f"127.0.0.1:{server.port}"
        )
    finally:
        await channel.close()
        await server.stop(1)


@pytest.fixture
async def links_url(clocked_vault: ClockedVault) -> AsyncIterator[str]:
    """The approvals endpoint (keyleash_approvals) in front of the clocked vault."""
    settings = ApprovalsSettings(
        listen="127.0.0.1:0", vault_target=clocked_vault.address, service_token=SERVICE_TOKEN
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
