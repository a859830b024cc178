"""Pending approval requests past their expiry are recorded expired by the vault's sweeper, with
nobody reading them (so the expired alert does not wait for a read)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import grpc

from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from tests.approvals.approval_helpers import mint_capped
from tests.approvals.conftest import DAY_MS, MovableClock
from tests.conftest import Stores, bearer, service_env
from tests.integration.vault_helpers import usd
from vault_service.server import create_server as create_vault
from vault_service.settings import VaultSettings


async def _state(database_url: str, name: str) -> tuple[str, str | None]:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT state, decided_by FROM approvals WHERE approval_id = $1", name.rsplit("/")[-1]
        )
        assert row is not None
        return str(row["state"]), row["decided_by"]
    finally:
        await connection.close()


async def test_the_sweeper_expires_requests_nobody_reads(stores: Stores, tenant: str) -> None:
    clock = MovableClock(int(time.time() * 1000) // DAY_MS * DAY_MS + DAY_MS // 2)
    env = service_env(stores) | {"KEYLEASH_APPROVAL_SWEEP_SECONDS": "0.05"}
    server = await create_vault(VaultSettings.from_env(env), "127.0.0.1:0", clock=clock)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            vault = vault_pb2_grpc.VaultServiceStub(channel)
            key = await mint_capped(vault, tenant, "10", on_denial=False)
            opened = await vault.CreateApproval(
                vault_pb2.CreateApprovalRequest(
                    quota="spend/calendar_day", amount=usd("3"), reason="one more"
                ),
                metadata=bearer(key.secret),
            )
            await asyncio.sleep(0.3)  # sweeps run; the request is not due yet
            assert (await _state(stores.database_url, opened.name))[0] == "pending"
            clock.next_day()
            for _ in range(200):
                if (await _state(stores.database_url, opened.name))[0] == "expired":
                    break
                await asyncio.sleep(0.05)
            assert await _state(stores.database_url, opened.name) == ("expired", "expiry")
    finally:
        await server.stop(1)
