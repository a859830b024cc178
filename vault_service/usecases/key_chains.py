"""A secret -> the chain of its key and ancestors (key first), cached per process and loaded
into Redis from Postgres on demand; ValidateKey.

Postgres is the source of truth for keys; Redis holds what one decision needs. Only policies are
trusted from the process cache: state, expiry and policy_version are re-checked inside the
decision script every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from keyleash_core.caches import LruCache
from keyleash_core.clock import Clock
from keyleash_core.errors import NotFound, StoreUnavailable
from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.postgres import run_db
from keyleash_core.reasons import DenyReason, ErrorReason
from vault_service.domain import secrets as key_secrets
from vault_service.store.hot import HotKeys
from vault_service.store.rebuild import rebuild_counters
from vault_service.store.registry import KeyRegistry

CHAIN_CACHE_SIZE = 100_000
MAX_LOAD_ATTEMPTS = 8


@dataclass(frozen=True)
class Validation:
    valid: bool
    reason: DenyReason | None
    record: KeyRecord | None
    blocked_by: KeyState | None = None


def chain_state(chain: Sequence[KeyRecord], now_ms: int) -> DenyReason | None:
    """None when the chain is usable, else why not: revoked > frozen > expired."""
    if any(r.state is KeyState.REVOKED for r in chain):
        return DenyReason.KEY_REVOKED
    if any(r.state is KeyState.FROZEN for r in chain):
        return DenyReason.KEY_FROZEN
    if any(r.expire_time_ms <= now_ms for r in chain):
        return DenyReason.KEY_EXPIRED
    return None


class KeyChains:
    """Resolves secrets to key chains. One per process; safe for concurrent use."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        hot: HotKeys,
        registry: KeyRegistry,
        pepper: bytes,
        clock: Clock,
        audit_max_lag_ms: int | None = None,
    ) -> None:
        # How far back a Redis loss can have forgotten decisions (None: audit off, unbounded).
        self.audit_max_lag_ms = audit_max_lag_ms
        self.pool = pool
        self.hot = hot
        self.registry = registry
        self.pepper = pepper
        self.clock = clock
        self._cache: LruCache[str, list[KeyRecord]] = LruCache(CHAIN_CACHE_SIZE)

    def hash_secret(self, secret: str) -> bytes:
        return key_secrets.secret_hash(self.pepper, secret)

    async def for_secret(self, secret: str) -> list[KeyRecord] | None:
        """The chain of the key a secret names (cached), or None when it names no key."""
        if len(secret) != key_secrets.SECRET_LENGTH:
            return None
        digest = self.hash_secret(secret)
        cache_key = digest.hex()
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached  # only well-formed secrets are cached: no checksum to verify again
        if not key_secrets.is_well_formed(secret):
            return None
        chain = await self._resolve(digest)
        if chain is not None:
            self._cache.put(cache_key, chain)
        return chain

    async def _resolve(self, digest: bytes) -> list[KeyRecord] | None:
        located = await self.hot.resolve(digest.hex())
        if located is not None:
            tenant_id, key_id = located
            (me,) = await self.hot.records(tenant_id, [key_id])
            if me is not None:
                ancestors = await self.hot.records(tenant_id, list(me.ancestor_ids))
                if all(a is not None for a in ancestors):
                    return [me, *(a for a in ancestors if a is not None)]
        record = await self.registry.get_by_hash(digest)
        if record is None:
            return None
        chain = await self.load_from_postgres(record)
        await self.hot.index_secret(digest.hex(), record.tenant_id, record.key_id)
        return chain

    async def load_from_postgres(self, record: KeyRecord) -> list[KeyRecord]:
        """The key and its ancestors from Postgres, each loaded into Redis if it is not."""
        by_id = await self.registry.get_many(record.key_path)
        chain = [by_id[key_id] for key_id in reversed(record.key_path)]
        for link in chain:
            await self.ensure_loaded(link)
        return chain

    async def ensure_loaded(self, record: KeyRecord) -> None:
        """Loads the key with counters rebuilt from billing_events, again if a charge settled
        while Postgres was being read (so the load cannot forget it)."""
        for _attempt in range(MAX_LOAD_ATTEMPTS):
            gen = await self.hot.generation(record)
            now = self.clock.now_ms()
            counters, keys, calls, snapshot = await run_db(
                lambda now=now: rebuild_counters(self.pool, record, now, self.audit_max_lag_ms)  # type: ignore[misc]
            )
            if await self.hot.load(record, counters, keys, calls, gen, snapshot):
                return
        raise StoreUnavailable("redis", "the key kept changing while it was being loaded")

    async def refresh(self, secret: str, chain: list[KeyRecord]) -> list[KeyRecord]:
        """Re-reads the chain after the script reported it missing or stale."""
        cache_key = self.hash_secret(secret).hex()
        self._cache.pop(cache_key)
        me = await self.registry.get(chain[0].key_id)
        if me is None:
            raise NotFound("the key no longer exists", reason=ErrorReason.KEY_NOT_FOUND)
        fresh = await self.load_from_postgres(me)
        self._cache.put(cache_key, fresh)
        return fresh

    async def fresher(self, secret: str, chain: list[KeyRecord]) -> list[KeyRecord] | None:
        """Before a policy denial: a newer policy in Redis may allow it (UpdateKeyPolicy)."""
        me = chain[0]
        current = await self.hot.records(me.tenant_id, [r.key_id for r in chain])
        if all(
            c is not None and c.policy_version == r.policy_version
            for c, r in zip(current, chain, strict=True)
        ):
            return None
        return await self.refresh(secret, chain)

    async def ancestors(self, record: KeyRecord) -> list[KeyRecord]:
        """The key's ancestors as Postgres has them now, parent first."""
        by_id = await self.registry.get_many(record.key_path[:-1])
        return [by_id[k] for k in reversed(record.key_path[:-1])]

    async def validate(self, secret: str) -> Validation:
        """ValidateKey: the key a secret names and whether it can act, from Postgres."""
        if not key_secrets.is_well_formed(secret):
            return Validation(False, DenyReason.KEY_UNKNOWN, None)
        record = await self.registry.get_by_hash(self.hash_secret(secret))
        if record is None:
            return Validation(False, DenyReason.KEY_UNKNOWN, None)
        problem = chain_state([record, *(await self.ancestors(record))], self.clock.now_ms())
        return Validation(not problem, problem, record)
