"""Whose hold a reservation is: Charge may settle only a reservation the charging key placed.

Redis's reservation hash records the placing key (authorize.lua writes `key_id` once, with the
hold, and nothing changes it), so reading it is as good as checking inside the settle script.
When Redis no longer has the hash (it expired, or Redis lost its data), the audit table decides:
an ALLOW of this key that placed this reservation. Unknown to both: never placed (or placed by
another tenant's key, whose hash lives under that tenant's tag), refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from keyleash_core.postgres import run_db
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import RedisClient, run_redis

PLACED_BY_SQL = """SELECT 1 FROM authorizations
    WHERE tenant_id = $1 AND key_id = $2 AND reservation_id = $3 AND decision = 'allow'
    LIMIT 1"""


class ReservationOwners:
    def __init__(self, pool: asyncpg.Pool, client: RedisClient) -> None:
        self._pool = pool
        self._redis = client

    async def placed_by_each(self, holds: Sequence[tuple[str, str, str]]) -> list[bool]:
        """`placed_by` for each (tenant_id, key_id, reservation_id): Redis asked in one round
        trip (a pipeline), the audit table only for holds Redis no longer has."""
        if len(holds) == 1:
            return [await self.placed_by(*holds[0])]

        async def owners() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for tenant_id, _key_id, reservation_id in holds:
                    pipe.hget(keyspace.reservation(tenant_id, reservation_id), "key_id")
                return list(await pipe.execute())

        found = await run_redis(owners)
        return [await self._owned(*hold, owner) for hold, owner in zip(holds, found, strict=True)]

    async def placed_by(self, tenant_id: str, key_id: str, reservation_id: str) -> bool:
        """Whether `key_id` of `tenant_id` placed `reservation_id`."""
        name = keyspace.reservation(tenant_id, reservation_id)
        owner = await run_redis(lambda: self._redis.hget(name, "key_id"))
        return await self._owned(tenant_id, key_id, reservation_id, owner)

    async def _owned(
        self, tenant_id: str, key_id: str, reservation_id: str, owner: bytes | str | None
    ) -> bool:
        """The answer from the reservation hash's owner, or from the audit table without it."""
        if owner is not None:
            return (owner.decode() if isinstance(owner, bytes) else owner) == key_id
        found = await run_db(
            lambda: self._pool.fetchval(PLACED_BY_SQL, tenant_id, key_id, reservation_id)
        )
        return found is not None
