"""Real-process tests for keyleash_ops.devstores: start, kill, stop and restart Redis/Postgres.

These need redis-server and the PostgreSQL server binaries installed; they never touch the
machine's shared services on 6379/5432. tmp_path lives under /tmp, so when run as root this also
exercises devstores making pytest's 0700 temp parents traversable for the postgres user.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from keyleash_ops.devstores import (
    DevStoreError,
    ManagedServer,
    find_free_port,
    start_postgres,
    start_redis,
    start_redis_cluster,
)


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        return bool(client.ping())
    finally:
        client.close()


async def _query(url: str, *statements: str) -> Any:
    """Run statements in order on one connection; return the value of the last one."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        result: Any = None
        for sql in statements:
            result = await conn.fetchval(sql)
        return result
    finally:
        await conn.close()


def _pg(url: str, *statements: str) -> Any:
    return asyncio.run(_query(url, *statements))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[ManagedServer]:
    server = start_redis(tmp_path / "redis", persistent=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[ManagedServer]:
    server = start_postgres(tmp_path / "pg", durable=False)
    try:
        yield server
    finally:
        server.stop()


def test_find_free_port_avoids_shared_ports() -> None:
    port = find_free_port()
    assert port not in (5432, 6379)
    assert 0 < port < 65536


def test_redis_ping_kill_restart(redis_server: ManagedServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.port != 6379
    assert _ping(redis_server.url)

    redis_server.kill()
    assert not redis_server.is_running()
    with pytest.raises(redis.ConnectionError):
        _ping(redis_server.url)

    redis_server.restart()
    assert redis_server.is_running()
    assert _ping(redis_server.url)


def test_redis_cluster_of_three_primaries_serves_every_slot_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    cluster = start_redis_cluster(tmp_path / "cluster")
    pids = [node._proc.pid for node in cluster.nodes if node._proc is not None]
    try:
        assert len(pids) == 3 and cluster.url == cluster.nodes[0].url
        client = redis.RedisCluster.from_url(cluster.url, socket_timeout=2)
        try:
            assert len(client.get_primaries()) == 3  # type: ignore[no-untyped-call]
            names = [f"kl:{{t{n}}}:x" for n in range(30)]
            for name in names:
                client.set(name, name)
            assert [client.get(name) for name in names] == [name.encode() for name in names]
            owners = {client.get_node_from_key(name).port for name in names}  # type: ignore[no-untyped-call]
            assert owners == {node.port for node in cluster.nodes}
        finally:
            client.close()
        cluster.nodes[1].kill()
        assert not cluster.is_running()
    finally:
        cluster.stop()
    assert not cluster.is_running()
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # reaped, no orphans


def test_redis_persistent_keeps_data_across_restart(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", persistent=True)
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.stop()
        server.stop()  # idempotent
        assert not server.is_running()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.stop()


def test_postgres_select_one(pg_server: ManagedServer) -> None:
    assert pg_server.url == f"postgresql://postgres@127.0.0.1:{pg_server.port}/keyleash"
    assert pg_server.port != 5432
    assert _pg(pg_server.url, "SELECT 1") == 1


def test_postgres_stop_restart_keeps_table(pg_server: ManagedServer) -> None:
    _pg(pg_server.url, "CREATE TABLE t (x int)", "INSERT INTO t VALUES (42)")
    pg_server.stop()
    assert not pg_server.is_running()
    pg_server.stop()  # idempotent

    pg_server.restart()
    assert pg_server.is_running()
    assert _pg(pg_server.url, "SELECT x FROM t") == 42


def test_postgres_kill_restart(pg_server: ManagedServer) -> None:
    port = pg_server.port
    pg_server.kill()
    assert not pg_server.is_running()

    pg_server.restart()
    assert pg_server.port == port
    assert _pg(pg_server.url, "SELECT 1") == 1


def test_postgres_busy_port_raises(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = int(holder.getsockname()[1])
        with pytest.raises(DevStoreError, match=f"port {busy} is in use"):
            server = start_postgres(tmp_path / "pg", port=busy, durable=False)
            server.stop()  # only reached if the check failed; don't leak the server
