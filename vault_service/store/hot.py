"""Redis side of the vault: the secret index, cached key records, the decision script."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.redis import keyspace
from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.redis.script_pipeline import ScriptBatcher
from keyleash_core.redis.scripts import RedisClient, Scripts, run_redis


class HotKeys:
    """Reads and writes of the vault's Redis state; every failure becomes StoreUnavailable."""

    def __init__(self, client: RedisClient, scripts: Scripts) -> None:
        self._redis = client
        self._scripts = scripts
        # Concurrent unary Authorize calls share pipelines (see script_pipeline).
        self._authorize = ScriptBatcher(scripts, "authorize")

    async def resolve(self, secret_hash_hex: str) -> tuple[str, str] | None:
        """(tenant_id, key_id) for a secret hash, if Redis knows it."""
        raw = await run_redis(lambda: self._redis.get(keyspace.secret_index(secret_hash_hex)))
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        tenant_id, _, key_id = text.partition("/")
        return tenant_id, key_id

    async def index_secret(self, secret_hash_hex: str, tenant_id: str, key_id: str) -> None:
        name = keyspace.secret_index(secret_hash_hex)
        await run_redis(lambda: self._redis.set(name, f"{tenant_id}/{key_id}"))

    async def records(self, tenant_id: str, key_ids: Sequence[str]) -> list[KeyRecord | None]:
        """The cached records of `key_ids` (None where not loaded), in one round trip."""

        async def fetch() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key_id in key_ids:
                    pipe.hmget(keyspace.key(tenant_id, key_id), "record", "loaded")
                return list(await pipe.execute())

        rows = await run_redis(fetch)
        return [
            KeyRecord.from_json(record) if record is not None and loaded is not None else None
            for record, loaded in rows
        ]

    async def generation(self, record: KeyRecord) -> str:
        """The key hash's "gen": settle.lua bumps it for every charge it could not count."""
        name = keyspace.key(record.tenant_id, record.key_id)
        raw = await run_redis(lambda: self._redis.hget(name, "gen"))
        if raw is None:
            return "0"
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def load(
        self,
        record: KeyRecord,
        counters: list[dict[str, Any]],
        keys: list[str],
        calls: int,
        gen: str = "0",
        snapshot: str = "",
    ) -> bool:
        """Loads a key rebuilt from Postgres (a no-op when already loaded). False when a charge
        settled since `gen` was read: the rebuild may miss it and must be done again."""
        fields = {
            "state": record.state.value,
            "expire_ms": str(record.expire_time_ms),
            "policy_version": str(record.policy_version),
            "record": record.to_json(),
            "snap": snapshot,
        }
        payload = json.dumps({"fields": fields, "calls": calls, "counters": counters, "gen": gen})
        loaded = await self._scripts.run(
            "load_key", [keyspace.key(record.tenant_id, record.key_id), *keys], [payload]
        )
        return int(loaded) >= 0

    async def set_state(self, records: Sequence[KeyRecord], state: KeyState) -> None:
        """Writes the new state (and record) of each key, loaded or not, in one round trip.

        Written even when the key is not loaded: a concurrent load from an older Postgres
        snapshot then keeps this newer state (load_key.lua uses HSETNX).
        """

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for record in records:
                    pipe.hset(
                        keyspace.key(record.tenant_id, record.key_id),
                        mapping={"state": state.value, "record": record.to_json()},
                    )
                await pipe.execute()

        await run_redis(write)

    async def set_policy(self, record: KeyRecord) -> None:
        name = keyspace.key(record.tenant_id, record.key_id)
        mapping: dict[str | bytes, str | bytes] = {
            "policy_version": str(record.policy_version),
            "record": record.to_json(),
        }
        await run_redis(lambda: self._redis.hset(name, mapping=mapping))  # type: ignore[arg-type]

    async def add_audit_tenant(self, tenant_id: str) -> None:
        await run_redis(lambda: self._redis.sadd(keyspace.AUDIT_TENANTS, tenant_id))

    async def audit_only(self, tenant_id: str, bound: int, fields: list[str]) -> bool:
        """Appends one audit record; False when the tenant's stream is at its bound."""
        answer = await self._scripts.run(
            "audit_only", [keyspace.audit_stream(tenant_id)], [str(bound), *fields]
        )
        return bool(answer == b"OK")

    async def authorize(self, call: ScriptCall) -> bytes:
        result: bytes = await self._authorize(call)
        return result

    async def authorize_many(self, calls: Sequence[ScriptCall]) -> list[bytes]:
        """Many decisions in one pipelined round trip (AuthorizeStream); each stays atomic."""
        return await self._scripts.run_many("authorize", [(c.keys, list(c.args)) for c in calls])
