"""Vault guarantees that involve the stores themselves: flushes, commands per call, secrets."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from keyleash.vault.v1 import vault_pb2
from keyleash_core.redis import keyspace
from keyleash_core.windows import ROLLING_24H_MS, day_period
from tests.conftest import redis_node_url, redis_node_urls
from tests.integration.vault_helpers import admin_token, authorize, cap, mint, per

ALLOW, DENY = vault_pb2.DECISION_ALLOW, vault_pb2.DECISION_DENY
DAY_MS = 24 * 3600 * 1000


async def record_spend(database_url: str, key: vault_pb2.Key, micros: int) -> None:
    """A billing event as the metering service writes it (the table is the shared contract)."""
    con = await asyncpg.connect(database_url)
    try:
        path = await con.fetchval("SELECT key_path FROM keys WHERE key_id = $1", key.key_id)
        await con.execute(
            """INSERT INTO billing_events (event_id, request_id, tenant_id, key_id, key_path, kind,
                   currency_code, amount_micros, occur_time)
               VALUES ($1, $2, $3, $4, $5, 'charge', 'USD', $6, $7)""",
            uuid.uuid4(), uuid.uuid4().hex, key.tenant_id, key.key_id, path, micros,
            datetime.now(tz=UTC),
        )  # fmt: skip
    finally:
        await con.close()


async def test_flushall_never_resets_a_cap(
    vault: Any, tenant: str, system: Any, redis_client: aioredis.Redis
) -> None:
    parent = await mint(vault, admin_token(), tenant, spend_caps=[cap("5.00")])
    child = await mint(
        vault, parent.secret, spend_caps=[cap("5.00", vault_pb2.SpendCap.WINDOW_ROLLING_24H)]
    )
    await record_spend(system.stores.database_url, child.key, 4_000_000)
    await redis_client.flushall()
    replies = await asyncio.gather(*(authorize(vault, child.secret, "0.10") for _ in range(30)))
    assert sum(r.decision == ALLOW for r in replies) == 10  # 1.00 left of 5.00
    denied = next(r for r in replies if r.decision == DENY)
    assert denied.reason == vault_pb2.DENY_REASON_SPEND_CAP_EXCEEDED


async def test_flushall_keeps_revoked_keys_revoked(
    vault: Any, tenant: str, redis_client: aioredis.Redis
) -> None:
    parent = await mint(vault, admin_token(), tenant)
    child = await mint(vault, parent.secret)
    await vault.RevokeKey(
        vault_pb2.RevokeKeyRequest(name=parent.key.name),
        metadata=(("authorization", f"Bearer {admin_token()}"),),
    )
    await redis_client.flushall()
    assert (await authorize(vault, child.secret)).reason == vault_pb2.DENY_REASON_KEY_REVOKED


async def test_one_script_call_per_authorize_on_the_hot_path(
    vault: Any, tenant: str, system: Any
) -> None:
    minted = await mint(vault, admin_token(), tenant, spend_caps=[cap("100.00")])
    await authorize(vault, minted.secret, "0.01")  # warm: tenant loaded, chain cached
    node_url = await redis_node_url(system.stores, keyspace.tenant(tenant))  # the tenant's node
    watcher = aioredis.Redis.from_url(node_url)
    issued: list[tuple[Any, Any, str]] = []
    async with watcher.monitor() as monitor:
        ready = asyncio.Event()

        async def watch() -> None:
            ready.set()
            async for command in monitor.listen():
                # Commands a script runs inside Redis show client_type "lua"; count the callers'.
                name = command["command"].split()[0].upper()
                if command.get("client_type") != "lua" and name not in ("PING", "MONITOR"):
                    issued.append((command.get("client_address"), command.get("client_port"), name))

        task = asyncio.ensure_future(watch())
        await ready.wait()
        await asyncio.sleep(0.1)
        for _ in range(20):
            assert (await authorize(vault, minted.secret, "0.01")).decision == ALLOW
        await asyncio.sleep(0.3)
        task.cancel()
    # The audit drainer polls on connections of its own; everything else must be the decisions.
    drainers = {
        tuple(c["addr"].rsplit(":", 1))
        for c in await watcher.client_list()
        if c.get("name") == "keyleash-audit-drainer"
    }
    await watcher.aclose()
    decisions = [name for host, port, name in issued if (host, str(port)) not in drainers]
    assert decisions == ["EVALSHA"] * 20
    stats = await redis_client_stats(node_url)
    assert stats["evalsha"] >= 20


async def redis_client_stats(url: str) -> dict[str, int]:
    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


async def test_no_plaintext_secret_in_redis_or_postgres(
    vault: Any, tenant: str, system: Any
) -> None:
    minted = await mint(vault, admin_token(), tenant, spend_caps=[cap("1.00")])
    await authorize(vault, minted.secret, "0.10")
    body = minted.secret[3:]
    values, redis_dump = [], ""
    for node_url in await redis_node_urls(system.stores):  # every node of a cluster
        redis_dump += subprocess.run(
            ["redis-cli", "-u", node_url, "--scan"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        client = aioredis.Redis.from_url(node_url)
        async for name in client.scan_iter(count=1000):
            kind = await client.type(name)  # bytes: the client does not decode responses
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "string":
                values.append(await client.get(name))
            elif kind == "hash":
                values.extend((await client.hgetall(name)).values())
        await client.aclose()
    assert values and all(body.encode() not in (v or b"") for v in values)
    assert body not in redis_dump
    con = await asyncpg.connect(system.stores.database_url)
    try:
        dump = await con.fetch("SELECT row_to_json(k)::text AS row FROM keys k")
        events = await con.fetch("SELECT row_to_json(e)::text AS row FROM key_events e")
    finally:
        await con.close()
    assert dump and all(body not in r["row"] for r in [*dump, *events])


async def test_windows_outlive_their_last_use_and_a_rolling_pair_expires_together(
    vault: Any, tenant: str, redis_client: aioredis.Redis
) -> None:
    # authorize.lua renews a TTL only when less than the window is left (then with up to a
    # minute to spare): each window must still live at least its length after every call.
    rolling = cap("5.00", vault_pb2.SpendCap.WINDOW_ROLLING_24H)
    minted = await mint(
        vault, admin_token(), tenant, rate_limits=[per(5, 60)], spend_caps=[cap("5.00"), rolling]
    )
    key = minted.key
    for _ in range(3):
        assert (await authorize(vault, minted.secret, "0.10")).decision == ALLOW
    rate_ttl = await redis_client.pttl(keyspace.rate(tenant, key.key_id))
    assert 60_000 <= rate_ttl <= 120_000
    today, _start, end_ms = day_period(int(time.time() * 1000))
    counter_ttl = await redis_client.pttl(keyspace.period_spend(tenant, key.key_id, "USD", today))
    assert counter_ttl >= end_ms - time.time() * 1000 + DAY_MS - 1_000  # the period and a day
    hash_ttl, index_ttl = [
        await redis_client.pttl(name) for name in keyspace.rolling_spend(tenant, key.key_id, "USD")
    ]
    assert hash_ttl >= ROLLING_24H_MS and abs(hash_ttl - index_ttl) < 1_000
