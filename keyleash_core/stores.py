"""Connecting to both stores at start-up: fail fast, with a message naming the variable."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from keyleash_core.errors import StoreUnavailable
from keyleash_core.postgres import apply_migrations, create_pool
from keyleash_core.redis.scripts import RedisClient, Scripts, close_redis, create_redis, ping
from keyleash_core.settings import StoreSettings

log = logging.getLogger("keyleash.stores")


class StartupError(Exception):
    """Start-up cannot go on; the message is one line that names the variable to fix."""


@dataclass
class Stores:
    """The store clients a service process holds for its lifetime."""

    redis: RedisClient
    scripts: Scripts
    pool: asyncpg.Pool

    async def aclose(self, timeout_seconds: float = 5.0) -> None:
        """Closes both clients; a connection still held after the timeout is cut, so a stuck
        query can never hang a shutdown."""
        try:
            await asyncio.wait_for(self.pool.close(), timeout_seconds)
        except TimeoutError:
            log.warning("postgres pool did not close in %.0f s; terminating it", timeout_seconds)
            self.pool.terminate()
        await self.scripts.aclose()
        await close_redis(self.redis)


async def connect_stores(settings: StoreSettings, *, pool_size: int = 20) -> Stores:
    """Connects to Redis and Postgres and applies migrations, or raises StartupError."""
    client = create_redis(
        settings.redis_url,
        timeout_seconds=settings.store_timeout_seconds,
        client_name="keyleash",
        cluster=settings.redis_cluster,
    )
    try:
        await ping(client)
    except StoreUnavailable as error:
        await close_redis(client)
        raise StartupError(
            f"cannot reach Redis at KEYLEASH_REDIS_URL ({error.metadata.get('detail', '')})"
        ) from None
    try:
        pool = await create_pool(
            settings.database_url,
            timeout_seconds=settings.store_timeout_seconds,
            max_size=pool_size,
        )
    except StoreUnavailable as error:
        await close_redis(client)
        raise StartupError(
            f"cannot reach Postgres at KEYLEASH_DATABASE_URL ({error.metadata.get('detail', '')})"
        ) from None
    try:
        await apply_migrations(pool)
    except Exception:
        await pool.close()
        await close_redis(client)
        raise
    return Stores(redis=client, scripts=Scripts(client), pool=pool)
