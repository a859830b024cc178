"""The keys metering charges against, read from the vault's registry in Postgres and cached.

Tenant, parent, path and agent of a key never change, so the cache is safe for them; policies do
change, and settle.lua refuses a plan built from an outdated policy_version (then we re-read).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from keyleash_core.caches import LruCache
from keyleash_core.errors import NotFound
from keyleash_core.key_rows import KEY_COLUMNS, record_from_row
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.postgres import run_db
from keyleash_core.reasons import ErrorReason

CACHE_SIZE = 100_000

_COLUMNS = KEY_COLUMNS + ", secret_hash"
_CHAIN_SQL = f"""SELECT {_COLUMNS} FROM keys
    WHERE key_id = ANY((SELECT key_path FROM keys WHERE key_id = $1)::text[])"""
_BY_HASH_SQL = "SELECT key_id FROM keys WHERE secret_hash = $1"


@dataclass(frozen=True)
class KeyChain:
    """A key (first) and its ancestors, nearest first, with the key's secret hash."""

    records: list[KeyRecord]
    secret_hash: bytes

    @property
    def key(self) -> KeyRecord:
        return self.records[0]


class KeyDirectory:
    """key_id -> KeyChain and secret hash -> key_id, read through an LRU cache."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._chains: LruCache[str, KeyChain] = LruCache(CACHE_SIZE)
        self._by_hash: LruCache[bytes, str] = LruCache(CACHE_SIZE)

    async def chain(self, key_id: str, *, fresh: bool = False) -> KeyChain:
        """The key's chain, or NotFound (reason KEY_NOT_FOUND)."""
        cached = None if fresh else self._chains.get(key_id)
        if cached is not None:
            return cached
        rows = await run_db(lambda: self._pool.fetch(_CHAIN_SQL, key_id))
        by_id = {row["key_id"]: row for row in rows}
        if key_id not in by_id:
            raise NotFound(
                f"no key {key_id!r}", reason=ErrorReason.KEY_NOT_FOUND, metadata={"key_id": key_id}
            )
        path = tuple(by_id[key_id]["key_path"])
        if any(k not in by_id for k in path):
            raise NotFound(
                f"an ancestor of key {key_id!r} is missing", reason=ErrorReason.KEY_NOT_FOUND
            )
        found = KeyChain(
            records=[record_from_row(by_id[k]) for k in reversed(path)],
            secret_hash=bytes(by_id[key_id]["secret_hash"]),
        )
        self._chains.put(key_id, found)
        return found

    async def key_id_for_hash(self, secret_hash: bytes) -> str | None:
        """The key a secret hash belongs to (cached), or None."""
        cached = self._by_hash.get(secret_hash)
        if cached is not None:
            return cached
        key_id = await run_db(lambda: self._pool.fetchval(_BY_HASH_SQL, secret_hash))
        if key_id is None:
            return None
        self._by_hash.put(secret_hash, key_id)
        return str(key_id)
