"""Fail closed: with Redis gone the vault answers UNAVAILABLE, never an unchecked ALLOW, and
recovers without a restart once Redis is back."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_ops.devstores import ManagedServer, start_postgres, start_redis
from tests.conftest import Stores, service_env
from tests.integration.vault_helpers import admin_token, authorize, cap, mint
from vault_service.server import create_server
from vault_service.settings import VaultSettings


@pytest.fixture
async def own_redis_vault(
    stores: Stores, own_redis: ManagedServer
) -> AsyncIterator[tuple[Any, ManagedServer]]:
    env = service_env(stores) | {
        "KEYLEASH_REDIS_URL": own_redis.url,
        "KEYLEASH_STORE_TIMEOUT_SECONDS": "1",
    }
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield vault_pb2_grpc.VaultServiceStub(channel), own_redis
    finally:
        await channel.close()
        await built.stop(1)


async def test_redis_down_means_unavailable_then_recovery(
    own_redis_vault: tuple[Any, ManagedServer], tenant: str
) -> None:
    vault, redis_server = own_redis_vault
    minted = await mint(vault, admin_token(), tenant, spend_caps=[cap("1.00")])
    assert (await authorize(vault, minted.secret, "0.50")).decision == vault_pb2.DECISION_ALLOW
    redis_server.kill()
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await authorize(vault, minted.secret, "0.10")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    redis_server.restart()  # empty: the cap must be rebuilt from Postgres, not reset
    reply = await authorize(vault, minted.secret, "0.10")
    assert reply.decision == vault_pb2.DECISION_ALLOW


@pytest.fixture
async def own_stores_vault(stores: Stores) -> AsyncIterator[tuple[Any, ManagedServer]]:
    """A vault on a Postgres and Redis of its own, so the test may kill them."""
    base = Path(tempfile.mkdtemp(prefix="keyleash-fault-", dir="/tmp"))
    base.chmod(0o755)
    postgres = start_postgres(base / "postgres", durable=False)
    redis_server = start_redis(base / "redis", persistent=False)
    env = service_env(stores) | {
        "KEYLEASH_REDIS_URL": redis_server.url,
        "KEYLEASH_DATABASE_URL": postgres.url,
        "KEYLEASH_STORE_TIMEOUT_SECONDS": "1",
    }
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield vault_pb2_grpc.VaultServiceStub(channel), postgres
    finally:
        await channel.close()
        await built.stop(1)
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_postgres_down_means_unavailable_then_recovery(
    own_stores_vault: tuple[Any, ManagedServer], tenant: str
) -> None:
    vault, postgres = own_stores_vault
    minted = await mint(vault, admin_token(), tenant)
    assert (await authorize(vault, minted.secret)).decision == vault_pb2.DECISION_ALLOW
    postgres.kill()
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await mint(vault, admin_token(), tenant)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # Decisions on a loaded key need only Redis: agents keep their (capped) service.
    assert (await authorize(vault, minted.secret)).decision == vault_pb2.DECISION_ALLOW
    postgres.restart()
    for _attempt in range(20):  # the pool replaces its broken connections as they are used
        try:
            await mint(vault, admin_token(), tenant)
            break
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
    else:
        raise AssertionError("the vault did not recover after Postgres came back")
