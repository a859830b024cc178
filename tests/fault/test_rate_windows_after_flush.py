"""Issue #14, defect 9: a Redis loss never lets a key admit more than its limit in a window.

The vault rebuilds a lost rate window from the audit table's ALLOWs, plus placeholders for the
ALLOWs whose audit entries were still in Redis when it was lost (vault_service/store/
rebuild_rates.py). Each test owns its Redis (FLUSHALL is safe there)."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import grpc
import redis.asyncio as aioredis
from google.protobuf import duration_pb2

from keyleash.vault.v1 import vault_pb2
from keyleash_core.redis import keyspace
from tests.fault.fault_helpers import (
    ServiceProcess,
    admin_md,
    authorize,
    connected,
    fresh_dir,
    own_stores,
)

LIMIT, WINDOW_S = 8, 600  # a window far longer than the test, so no timing decides anything
ALLOW = vault_pb2.DECISION_ALLOW


@contextmanager
def services_with(stores: Any, vault_env: dict[str, str]) -> Iterator[dict[str, ServiceProcess]]:
    log_dir = fresh_dir("keyleash-fault-logs-")
    procs = {name: ServiceProcess(name, stores, log_dir) for name in ("vault", "metering")}
    procs["vault"].env = {**procs["vault"].env, **vault_env}
    try:
        for proc in procs.values():
            proc.start()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


async def mint_limited(vault: Any, tenant: str) -> Any:
    rate = vault_pb2.RateLimit(limit=LIMIT, window=duration_pb2.Duration(seconds=WINDOW_S))
    return await vault.MintKey(
        vault_pb2.MintKeyRequest(
            tenant_id=tenant, agent_id="a", label="l", scopes=["api.call"],
            policy=vault_pb2.Policy(rate_limits=[rate]),
        ),
        metadata=admin_md(),
        timeout=10,
    )  # fmt: skip


async def allowed(vault: Any, secret: str, calls: int) -> list[Any]:
    replies = [await authorize(vault, secret) for _ in range(calls)]
    return [r for r in replies if r.decision == ALLOW]


async def drained_allows(database_url: str, tenant: str, expected: int) -> set[str]:
    deadline = time.monotonic() + 60
    con = await asyncpg.connect(database_url)
    try:
        while True:
            rows = await con.fetch(
                "SELECT decision_id FROM authorizations WHERE tenant_id = $1"
                " AND decision = 'allow'",
                tenant,
            )
            if len(rows) >= expected or time.monotonic() > deadline:
                return {r["decision_id"] for r in rows}
            await asyncio.sleep(0.2)
    finally:
        await con.close()


async def flush(redis_url: str) -> aioredis.Redis:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    return client


async def test_a_window_spanning_a_flush_admits_no_more_than_its_limit_drained() -> None:
    """Drained audit: the window is rebuilt from the audit table's ALLOWs."""
    tenant = "t-" + uuid.uuid4().hex[:12]
    with own_stores() as stores, services_with(stores, {}) as procs:
        async with connected(procs) as (vault, _metering):
            minted = await mint_limited(vault, tenant)
            before = await allowed(vault, minted.secret, 5)
            assert len(before) == 5
            ids = await drained_allows(stores.database_url, tenant, 5)
            assert len(ids) == 5
            client = await flush(stores.redis_url)
            try:
                after = await allowed(vault, minted.secret, 2 * LIMIT)
                members = {
                    m.decode() if isinstance(m, bytes) else str(m)
                    for m in await client.zrange(keyspace.rate(tenant, minted.key.key_id), 0, -1)
                }
            finally:
                await client.aclose()
            print(f"\nFAULT rate-after-flush drained: before=5 after={len(after)}")
            assert ids <= members  # rebuilt from the audit table
            assert len(before) + len(after) <= LIMIT


async def test_a_window_spanning_a_flush_admits_no_more_than_its_limit_undrained() -> None:
    """Undrained audit (the drainer is off): the unknown ALLOWs count as placeholders."""
    tenant = "t-" + uuid.uuid4().hex[:12]
    with own_stores() as stores, services_with(stores, {"KEYLEASH_AUDIT_DRAIN": "0"}) as procs:
        async with connected(procs) as (vault, _metering):
            minted = await mint_limited(vault, tenant)
            before = await allowed(vault, minted.secret, 5)
            assert len(before) == 5
            client = await flush(stores.redis_url)
            await client.aclose()
            after = await allowed(vault, minted.secret, 2 * LIMIT)
            print(f"\nFAULT rate-after-flush undrained: before=5 after={len(after)}")
            assert len(before) + len(after) <= LIMIT


async def test_no_decision_while_the_oldest_undrained_entry_is_older_than_the_lag_bound() -> None:
    """What bounds the placeholders: a loss can only forget the last lag bound's decisions."""
    tenant = "t-" + uuid.uuid4().hex[:12]
    env = {"KEYLEASH_AUDIT_DRAIN": "0", "KEYLEASH_AUDIT_MAX_LAG_SECONDS": "1"}
    with own_stores() as stores, services_with(stores, env) as procs:
        async with connected(procs) as (vault, _metering):
            minted = await mint_limited(vault, tenant)
            assert len(await allowed(vault, minted.secret, 1)) == 1
            await asyncio.sleep(1.5)  # the undrained entry is now older than the bound
            try:
                await authorize(vault, minted.secret)
                raise AssertionError("decided past the audit lag bound")
            except grpc.aio.AioRpcError as refused:
                assert refused.code() == grpc.StatusCode.UNAVAILABLE
