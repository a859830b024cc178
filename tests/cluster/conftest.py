"""The cluster run: the vault, metering and audit tests again, on a local Redis Cluster of three
primaries (keyleash_ops.devstores.start_redis_cluster) with KEYLEASH_REDIS_CLUSTER=on.

Every fixture of tests/conftest.py that holds Redis, directly or through `stores`, is overridden
here: session fixtures are cached per definition, so one left out would hand these tests the
standalone Redis. Package scope: the cluster and both servers stop when this directory is done.
Postgres is a fresh one too: some tests use fixed request ids and agent run ids, which a second
run on the same database would find already taken.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from redis.asyncio.cluster import RedisCluster

from keyleash_core.redis.scripts import close_redis
from keyleash_ops.devstores import ManagedServer, start_postgres, start_redis_cluster
from tests.conftest import Stores, System, running_system


def _cluster_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="keyleash-cluster-", dir="/tmp"))


@pytest.fixture(scope="package")
def stores() -> Iterator[Stores]:
    base = _cluster_dir()
    base.chmod(0o755)  # the postgres user must reach its data dir
    started: list[ManagedServer] = []
    try:
        postgres = start_postgres(base / "postgres", durable=False)
        started.append(postgres)
        cluster = start_redis_cluster(base / "redis")
        started.append(cluster)
        yield Stores(cluster.url, postgres.url, cluster, postgres, redis_cluster=True)
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="package")
async def system(stores: Stores) -> AsyncIterator[System]:
    async with running_system(stores) as running:
        yield running


@pytest.fixture(scope="package")
async def vault_channel(system: System) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(system.vault_address) as channel:
        yield channel


@pytest.fixture(scope="package")
async def metering_channel(system: System) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(system.metering_address) as channel:
        yield channel


@pytest.fixture(scope="package")
async def redis_client(stores: Stores) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(stores.redis_url)
    yield client
    await close_redis(client)


@pytest.fixture
def own_redis() -> Iterator[ManagedServer]:
    """A Redis Cluster of the test's own, which it may kill or leave undrained."""
    base = _cluster_dir()
    cluster = start_redis_cluster(base)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
