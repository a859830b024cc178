"""GetKeyUsage: what a key and its ancestors have used and have left of every limit, read
without consuming anything (`key_usage.lua`), with the holds each key has open."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from keyleash_core.auth import KEY, SERVICE, Credential
from keyleash_core.errors import InvalidArgument, StoreUnavailable
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.redis.scripts import Scripts
from keyleash_core.tenants import load_tenant
from vault_service.domain.decision import RESERVATION_TTL_MS, Quota
from vault_service.domain.usage import parse_usage, usage_plan
from vault_service.store.holds import HoldRow, unsettled_holds
from vault_service.usecases.key_chains import KeyChains
from vault_service.usecases.permissions import ADMIN_VIEW, Permissions

MAX_ATTEMPTS = 4
MAX_HOLDS = 100


@dataclass(frozen=True)
class KeyUsageView:
    """One key of the chain: its record, its quotas now, its open holds (newest first)."""

    record: KeyRecord
    quotas: list[Quota] = field(default_factory=list)
    holds: list[HoldRow] = field(default_factory=list)


class KeyUsageReader:
    def __init__(
        self, chains: KeyChains, permissions: Permissions, pool: asyncpg.Pool, scripts: Scripts
    ) -> None:
        self._chains = chains
        self._permissions = permissions
        self._pool = pool
        self._scripts = scripts

    async def usage(
        self, credential: Credential, name: str, agent_run_id: str
    ) -> tuple[list[KeyUsageView], int]:
        """The chain's usage, the key first, and the time (ms) it was read at."""
        record = await self._subject(credential, name)
        chain = [record, *(await self._chains.ancestors(record))]
        now_ms, by_link = await self._read_quotas(chain, agent_run_id)
        holds = await self._open_holds(chain, now_ms)
        views = [
            KeyUsageView(r, quotas, [h for h in holds if h.key_id == r.key_id])
            for r, quotas in zip(chain, by_link, strict=True)
        ]
        return views, now_ms

    async def _subject(self, credential: Credential, name: str) -> KeyRecord:
        if not name:
            if credential.kind != KEY:
                raise InvalidArgument("name", "required unless the caller is a key holder")
            return (await self._permissions.caller_chain(credential))[0]
        reader = ADMIN_VIEW if credential.kind == SERVICE else credential
        return await self._permissions.key_by_name(reader, name, allow_self=True)

    async def _read_quotas(
        self, chain: list[KeyRecord], agent_run_id: str
    ) -> tuple[int, list[list[Quota]]]:
        hot = self._chains.hot
        for _attempt in range(MAX_ATTEMPTS):
            now_ms = self._chains.clock.now_ms()
            raw = await hot.key_usage(usage_plan(chain, agent_run_id, now_ms))
            outcome = parse_usage(raw, len(chain))
            if outcome.missing_index < 0:
                return now_ms, outcome.quotas_by_link
            if outcome.missing_index == 0:  # Redis lost the tenant: rebuild it, then read
                await load_tenant(self._pool, self._scripts, chain[0].tenant_id, now_ms)
            else:
                await self._chains.ensure_loaded(chain[outcome.missing_index - 1])
        raise StoreUnavailable("redis", "the key kept changing while its usage was read")

    async def _open_holds(self, chain: list[KeyRecord], now_ms: int) -> list[HoldRow]:
        since = datetime.fromtimestamp((now_ms - RESERVATION_TTL_MS) / 1000, tz=UTC)
        tenant_id = chain[0].tenant_id
        rows = await unsettled_holds(
            self._pool, tenant_id, [r.key_id for r in chain], since, MAX_HOLDS * len(chain)
        )
        still_open = await self._chains.hot.open_reservations(
            tenant_id, [r.reservation_id for r in rows]
        )
        return [r for r in rows if r.reservation_id in still_open]
