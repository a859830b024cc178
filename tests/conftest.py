"""Test fixtures: the suite's own Redis and Postgres processes, both servers in-process on port 0.

Set KEYLEASH_TEST_REDIS_URL / KEYLEASH_TEST_DATABASE_URL to use existing servers instead (fault
tests that kill the stores then skip themselves, since they cannot own those processes).

tests/cluster/conftest.py overrides the Redis-backed fixtures here to run the vault, metering and
audit tests a second time on a local Redis Cluster; tests that talk to Redis nodes directly ask
`redis_node_url` / `redis_node_urls`, which answer for either topology.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from keyleash.metering.v1 import metering_pb2_grpc
from keyleash.vault.v1 import vault_pb2_grpc
from keyleash_core.grpc_server import BuiltServer
from keyleash_ops.devstores import ManagedServer, start_postgres, start_redis
from metering_service.server import create_server as create_metering
from metering_service.settings import MeteringSettings
from vault_service.server import create_server as create_vault
from vault_service.settings import VaultSettings

ADMIN_TOKEN = os.environ.setdefault(
    "KEYLEASH_TEST_ADMIN_TOKEN", "test-admin-" + secrets.token_urlsafe(16)
)
SERVICE_TOKEN = os.environ.setdefault(
    "KEYLEASH_TEST_SERVICE_TOKEN", "test-service-" + secrets.token_urlsafe(16)
)


@dataclass
class Stores:
    redis_url: str
    database_url: str
    redis_server: ManagedServer | None
    postgres_server: ManagedServer | None
    redis_cluster: bool = False


@pytest.fixture(scope="session")
def stores() -> Iterator[Stores]:
    redis_url = os.environ.get("KEYLEASH_TEST_REDIS_URL", "")
    database_url = os.environ.get("KEYLEASH_TEST_DATABASE_URL", "")
    started: list[ManagedServer] = []
    base = Path(tempfile.mkdtemp(prefix="keyleash-test-", dir="/tmp"))
    base.chmod(0o755)
    try:
        redis_server = postgres_server = None
        if not redis_url:
            redis_server = start_redis(base / "redis", persistent=False)
            started.append(redis_server)
            redis_url = redis_server.url
        if not database_url:
            postgres_server = start_postgres(base / "postgres", durable=False)
            started.append(postgres_server)
            database_url = postgres_server.url
        yield Stores(redis_url, database_url, redis_server, postgres_server)
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)  # ~75 MB of Postgres per run otherwise


def service_env(stores: Stores) -> dict[str, str]:
    return {
        "KEYLEASH_REDIS_URL": stores.redis_url,
        "KEYLEASH_DATABASE_URL": stores.database_url,
        "KEYLEASH_KEY_PEPPER": "test-pepper-0123456789abcdef",
        "KEYLEASH_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
        "KEYLEASH_SERVICE_TOKEN_SHA256": hashlib.sha256(SERVICE_TOKEN.encode()).hexdigest(),
        "KEYLEASH_STORE_TIMEOUT_SECONDS": "2",
    } | ({"KEYLEASH_REDIS_CLUSTER": "on"} if stores.redis_cluster else {})


@pytest.fixture
def own_redis() -> Iterator[ManagedServer]:
    """A Redis of the test's own, which it may kill or leave undrained (the cluster run gives a
    Redis Cluster of its own instead)."""
    base = Path(tempfile.mkdtemp(prefix="keyleash-own-", dir="/tmp"))
    server = start_redis(base, persistent=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


async def redis_node_url(stores: Stores, key: str) -> str:
    """The URL of the Redis server holding `key`: the only one, or the cluster primary owning
    the key's slot."""
    if not stores.redis_cluster:
        return stores.redis_url
    client = RedisCluster.from_url(stores.redis_url)
    try:
        await client.initialize()
        node = client.get_node_from_key(key)
    finally:
        await client.aclose()
    assert node is not None, f"no node serves {key}"
    return f"redis://{node.host}:{node.port}/0"


async def redis_node_urls(stores: Stores) -> list[str]:
    """The URLs of every Redis server holding data: the only one, or each cluster primary."""
    if not stores.redis_cluster:
        return [stores.redis_url]
    client = RedisCluster.from_url(stores.redis_url)
    try:
        await client.initialize()
        return [f"redis://{node.host}:{node.port}/0" for node in client.get_primaries()]
    finally:
        await client.aclose()


@dataclass
class System:
    vault: BuiltServer
    metering: BuiltServer
    vault_address: str
    metering_address: str
    stores: Stores


@asynccontextmanager
async def running_system(stores: Stores) -> AsyncIterator[System]:
    """Both servers in-process on port 0, on `stores`, until the block ends."""
    env = service_env(stores)
    vault = await create_vault(VaultSettings.from_env(env), "127.0.0.1:0")
    metering = await create_metering(MeteringSettings.from_env(env), "127.0.0.1:0")
    try:
        yield System(
            vault, metering, f"127.0.0.1:{vault.port}", f"127.0.0.1:{metering.port}", stores
        )
    finally:
        await vault.stop(1)
        await metering.stop(1)


@pytest.fixture(scope="session")
async def system(stores: Stores) -> AsyncIterator[System]:
    async with running_system(stores) as running:
        yield running


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="session")
async def vault_channel(system: System) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(system.vault_address) as channel:
        yield channel


@pytest.fixture(scope="session")
async def metering_channel(system: System) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(system.metering_address) as channel:
        yield channel


@pytest.fixture
def vault(vault_channel: grpc.aio.Channel) -> Any:
    return vault_pb2_grpc.VaultServiceStub(vault_channel)


@pytest.fixture
def metering(metering_channel: grpc.aio.Channel) -> Any:
    return metering_pb2_grpc.MeteringServiceStub(metering_channel)


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test, so tests never need FLUSHALL and can share the stores."""
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
async def redis_client(stores: Stores) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stores.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
def fail_on_unhandled_loop_errors() -> Iterator[None]:
    """A test fails when the event loop logged an exception nobody handled."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        yield
        return
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    loop.set_exception_handler(previous)
    assert not errors, f"unhandled exceptions in the event loop: {errors}"


@pytest.fixture
async def db(system: System) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the suite's Postgres, for reading what the services wrote."""
    con = await asyncpg.connect(system.stores.database_url)
    yield con
    await con.close()
