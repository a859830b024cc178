"""KEYLEASH_REDIS_CLUSTER: parsing, URL checks, and the client create_redis builds for it."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection

from keyleash_core.redis.scripts import create_redis
from keyleash_core.settings import SettingsError, StoreSettings

BASE = {
    "KEYLEASH_REDIS_URL": "redis://10.0.0.1:6379/0",
    "KEYLEASH_DATABASE_URL": "postgresql://u@db/keyleash",
    "KEYLEASH_KEY_PEPPER": "pepper-0123456789abcdef",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), ("", False), ("off", False), ("on", True), ("TRUE", True), ("1", True)],
)
def test_cluster_flag_parses_like_the_other_switches(raw: str | None, expected: bool) -> None:
    env = BASE | ({} if raw is None else {"KEYLEASH_REDIS_CLUSTER": raw})
    assert StoreSettings.from_env(env).redis_cluster is expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("unix:///run/redis.sock", "redis:// or rediss://"),
        ("redis://10.0.0.1:6379/2", "database 0"),
    ],
)
def test_cluster_mode_refuses_urls_a_cluster_cannot_serve(url: str, message: str) -> None:
    env = BASE | {"KEYLEASH_REDIS_CLUSTER": "on", "KEYLEASH_REDIS_URL": url}
    with pytest.raises(SettingsError, match=message):
        StoreSettings.from_env(env)


def test_cluster_flag_rejects_other_words() -> None:
    with pytest.raises(SettingsError, match="KEYLEASH_REDIS_CLUSTER"):
        StoreSettings.from_env(BASE | {"KEYLEASH_REDIS_CLUSTER": "maybe"})


async def test_create_redis_builds_a_cluster_client_with_the_same_timeouts() -> None:
    url = "rediss://10.0.0.1:7000"
    standalone = create_redis(url, timeout_seconds=1.5, client_name="x")
    cluster = create_redis(url, timeout_seconds=1.5, client_name="x", cluster=True)
    try:
        assert isinstance(standalone, aioredis.Redis)
        assert isinstance(cluster, RedisCluster)
        kwargs = cluster.get_connection_kwargs()
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 1.5
        assert kwargs["client_name"] == "x" and kwargs["max_connections"] == 256
        assert kwargs["connection_class"] is SSLConnection
    finally:
        await standalone.aclose()
        await cluster.aclose()
