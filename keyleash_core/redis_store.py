"""Redis access both services share: the client, the Lua scripts, and failure mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.commands.core import AsyncScript

from keyleash_core.errors import StoreUnavailable
from keyleash_core.telemetry import STORE_ERRORS, store_span

T = TypeVar("T")

# A lost or slow Redis is the same thing to a caller: nothing was decided, retry later.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
    OSError,
    TimeoutError,
)


def create_redis(
    url: str, *, timeout_seconds: float, max_connections: int = 256, client_name: str | None = None
) -> aioredis.Redis:
    """A client that never waits longer than `timeout_seconds` for Redis, so callers fail closed."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        max_connections=max_connections,
        decode_responses=False,
        health_check_interval=30,
        client_name=client_name,
    )
    return client


async def run_redis(operation: Callable[[], Awaitable[T]]) -> T:
    """Runs one Redis operation; connection trouble becomes StoreUnavailable (fail closed)."""
    try:
        return await operation()
    except REDIS_ERRORS as error:
        STORE_ERRORS.add(1, {"store": "redis"})
        raise StoreUnavailable("redis", f"{type(error).__name__}: {error}") from None


async def ping(client: aioredis.Redis) -> None:
    await run_redis(client.ping)


class Scripts:
    """The Lua scripts under keyleash_core/lua, registered once per client.

    redis-py's Script runs EVALSHA and reloads the script on NOSCRIPT (after a Redis restart or
    SCRIPT FLUSH), so the hot path is one EVALSHA per call.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._scripts: dict[str, AsyncScript] = {}
        for entry in resources.files("keyleash_core.lua").iterdir():
            if entry.name.endswith(".lua"):
                name = entry.name.removesuffix(".lua")
                self._scripts[name] = client.register_script(entry.read_text(encoding="utf-8"))

    def __getitem__(self, name: str) -> AsyncScript:
        return self._scripts[name]

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts[name]
        with store_span(f"redis {name}"):
            return await run_redis(lambda: script(keys=keys, args=args))
