"""The tenant's connections version in Redis: what lets the gateway keep a connection secret in
memory and still use a rotated one on its very next call.

A change to a tenant's connections (create, rotate, delete) first deletes the version, then
commits to Postgres, then sets a fresh one. So a version is only ever written after every change
before it committed, and AccessConnectionSecret reads it before it reads Postgres: a secret read
under version V is at least as new as V. While a change is in flight there is no version, and an
absent version means "read the secret again" (so does a lost Redis, until the next change).
"""

from __future__ import annotations

import logging
import secrets

from keyleash_core.errors import StoreUnavailable
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import RedisClient, run_redis

log = logging.getLogger("keyleash.vault.connections")


class ConnectionVersions:
    def __init__(self, client: RedisClient) -> None:
        self._redis = client

    async def current(self, tenant_id: str) -> str:
        """The version now; "" when there is none (changing, or never set since Redis lost it)."""
        raw = await run_redis(lambda: self._redis.get(keyspace.connections_version(tenant_id)))
        if raw is None:
            return ""
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def withdraw(self, tenant_id: str) -> None:
        """Before a change: no cached secret may be trusted from now on (raises when Redis
        cannot be told, so the change is not made)."""
        await run_redis(lambda: self._redis.delete(keyspace.connections_version(tenant_id)))

    async def renew(self, tenant_id: str) -> None:
        """After a change committed. If Redis cannot be told, the version stays absent, which
        is still correct (every call reads the secret): the change itself stands."""
        name = keyspace.connections_version(tenant_id)
        try:
            await run_redis(lambda: self._redis.set(name, secrets.token_hex(8)))
        except StoreUnavailable as error:
            log.warning("connections version of %s not renewed: %s", tenant_id, error)
