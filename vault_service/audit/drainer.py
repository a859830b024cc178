"""Drains the per-tenant audit streams into Postgres, exactly once in effect.

Runs inside every vault process (the vault owns its decisions and their record; N replicas are
N consumers of one consumer group). Entries are acknowledged and deleted only after the batch
holding them is committed; the insert is idempotent by decision id, so an entry delivered twice
(after a crash, through XAUTOCLAIM) is stored once. The streams therefore hold exactly what is
not yet committed, which is what the decision script's bound counts.

On a Redis Cluster each tenant's stream lives on the primary owning its slot: streams are found
with SCAN on every primary (and the tenant set), and read with one XREADGROUP per stream,
pipelined, since one XREADGROUP over streams of several slots is a CROSSSLOT error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from keyleash_core.errors import KeyleashError
from keyleash_core.postgres import POSTGRES_ERRORS
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import REDIS_ERRORS, RedisClient
from vault_service.audit.records import INSERT_ENTRIES, entry_parts

log = logging.getLogger("keyleash.audit")
# What pauses the drainer (it retries), as opposed to a bug (it stops loudly).
_DRAIN_ERRORS: tuple[type[BaseException], ...] = (KeyleashError, *REDIS_ERRORS, *POSTGRES_ERRORS)

GROUP = "audit-drainers"
STREAM_PATTERN = "kl:{*}:audit"


@dataclass
class AuditLag:
    """How far the drainer is behind: undrained entries and the age of the oldest."""

    entries: int
    oldest_age_seconds: float


class AuditDrainer:
    def __init__(
        self,
        client: RedisClient,
        pool: asyncpg.Pool,
        *,
        batch_size: int = 2000,
        block_ms: int = 200,
        claim_idle_ms: int = 5000,
        retention_days: int = 90,
        consumer: str | None = None,
    ) -> None:
        self._redis = client
        self._pool = pool
        self._batch = batch_size
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._retention_days = retention_days
        self._consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._streams: set[str] = set()
        self._last_scan = 0.0
        self._last_retention = 0.0
        self._task: asyncio.Task[None] | None = None
        self.committed = 0

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        """Cancels the drain loop, again until it ends (at most 5 s): on Python 3.11 a cancel
        can be lost inside asyncio.wait_for, which redis-py wraps around socket writes
        (bpo-42130), and the loop would go on."""
        task = self._task
        deadline = time.monotonic() + 5.0
        while task is not None and not task.done() and time.monotonic() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)

    async def run(self) -> None:
        """Drains until cancelled; store failures are logged and retried after a pause."""
        while True:
            try:
                # A full batch means a backlog: go on at once. Otherwise wait, so that under a
                # steady load each pass carries many records (one COPY and one XACK for all)
                # instead of a few, which costs the vault's event loop far less per record.
                if await self.drain_once() < self._batch:
                    await asyncio.sleep(self._block_ms / 1000)
            except asyncio.CancelledError:
                raise
            except _DRAIN_ERRORS as e:
                log.warning("audit drain paused: %s", e)
                self._streams.clear()
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("audit drain pass failed")
                self._streams.clear()
                await asyncio.sleep(1.0)

    async def drain_once(self) -> int:
        """One pass: reclaim stuck entries, read new ones, commit, acknowledge. Returns count."""
        await self._discover()
        if not self._streams:
            return 0
        await self._maybe_apply_retention()
        entries = await self._reclaim()
        if not self._streams:
            return 0
        try:
            fresh = await self._read_new()
        except redis.exceptions.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._streams.clear()  # Redis lost the groups (flush, restart): create them again
            return 0
        for stream, items in fresh:
            entries.extend((_name(stream), entry_id, fields) for entry_id, fields in items)
        if entries:
            await self._commit(entries)
        return len(entries)

    async def _read_new(self) -> list[Any]:
        """[(stream, [(id, fields), ...]), ...]: entries never delivered to this group."""
        client = self._redis
        if not isinstance(client, RedisCluster):
            fresh: Any = await client.xreadgroup(
                GROUP, self._consumer, dict.fromkeys(self._streams, ">"), count=self._batch
            )
            return fresh or []
        async with client.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                # Routed here: redis-py would ask the server (COMMAND GETKEYS) where the keys of
                # an XREADGROUP are, one more round trip per stream.
                pipe.execute_command(
                    *("XREADGROUP", "GROUP", GROUP, self._consumer, "COUNT", self._batch),
                    *("STREAMS", stream, ">"),
                    target_nodes=client.get_node_from_key(stream),
                )
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        for reply in replies:  # NOGROUP first: it means every group is to be created again
            if isinstance(reply, redis.exceptions.ResponseError) and "NOGROUP" in str(reply):
                raise reply
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return [entry for reply in replies for entry in reply or []]

    async def _discover(self) -> None:
        names = {_name(m) for m in await self._redis.smembers(keyspace.AUDIT_TENANTS)}
        found = {keyspace.audit_stream(tenant) for tenant in names}
        if time.monotonic() - self._last_scan > 30 or not self._streams:
            # The tenant set can be lost with a flush while vaults still write: scan as well.
            self._last_scan = time.monotonic()
            async for name in self._redis.scan_iter(
                match=STREAM_PATTERN, count=1000, _type="stream"
            ):
                found.add(_name(name))
        for stream in found - self._streams:
            try:
                await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.exceptions.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            self._streams.add(stream)

    async def _reclaim(self) -> list[tuple[str, Any, dict[bytes, bytes]]]:
        """Entries delivered to a consumer that died before acknowledging them (XAUTOCLAIM)."""
        claimed: list[tuple[str, Any, dict[bytes, bytes]]] = []
        for stream in list(self._streams):
            try:
                reply: Any = await self._redis.xautoclaim(
                    stream, GROUP, self._consumer, self._claim_idle_ms, "0-0", count=self._batch
                )
            except redis.exceptions.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                self._streams.discard(stream)
                continue
            claimed.extend((stream, entry_id, fields) for entry_id, fields in reply[1] if fields)
            if len(claimed) >= self._batch:
                break
        return claimed

    async def _commit(self, entries: list[tuple[str, Any, dict[bytes, bytes]]]) -> None:
        parts = [entry_parts(fields) for _stream, _id, fields in entries]
        async with self._pool.acquire() as con:
            await con.execute(INSERT_ENTRIES, [v for v, _q in parts], [q for _v, q in parts])
        by_stream: dict[str, list[Any]] = {}
        for stream, entry_id, _fields in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()
        self.committed += len(entries)

    async def lag(self) -> AuditLag:
        """Undrained entries over all known streams and the age of the oldest one."""
        await self._discover()
        entries, oldest_ms = 0, None
        now_ms = time.time() * 1000
        for stream in self._streams:
            entries += await self._redis.xlen(stream)
            first: Any = await self._redis.xrange(stream, count=1)
            if first:
                stamp = int(_name(first[0][0]).split("-")[0])
                oldest_ms = stamp if oldest_ms is None else min(oldest_ms, stamp)
        age = 0.0 if oldest_ms is None else max(now_ms - oldest_ms, 0) / 1000
        return AuditLag(entries, age)

    async def _maybe_apply_retention(self) -> None:
        if time.monotonic() - self._last_retention < 3600 and self._last_retention:
            return
        self._last_retention = time.monotonic()
        async with self._pool.acquire() as con:
            dropped = await con.fetchval(
                "SELECT keyleash_drop_partitions_before("
                "'authorizations', now() - make_interval(days => $1))",
                self._retention_days,
            )
            await con.execute(
                "SELECT keyleash_ensure_monthly_partitions("
                "'authorizations', 'decision_time', now(), 3)"
            )
        if dropped:
            log.info("audit retention dropped %d partitions", dropped)


def _name(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
