"""What only a Redis Cluster can get wrong: tenants spread over primaries, every script call in
one slot, scripts reloaded on every primary, audit streams found on every primary, and a dead
primary taking down only its own tenants."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster

from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_core.errors import StoreUnavailable
from keyleash_core.postgres import create_pool
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import Scripts, close_redis
from keyleash_ops.devstores import ManagedServer, RedisClusterServer, start_redis_cluster
from tests.conftest import SERVICE_TOKEN, Stores, bearer, service_env
from tests.integration.test_audit import recorded, wait_for_rows
from tests.integration.vault_helpers import admin_token, authorize, cap, mint, per, usd
from vault_service.audit.drainer import AuditDrainer
from vault_service.server import create_server
from vault_service.settings import VaultSettings

ALLOW, DENY = vault_pb2.DECISION_ALLOW, vault_pb2.DECISION_DENY


async def tenants_on_every_primary(client: RedisCluster) -> list[str]:
    """Fresh tenant ids, one whose slot each primary owns (in the order of get_primaries)."""
    await client.initialize()
    primaries = [node.name for node in client.get_primaries()]
    found: dict[str, str] = {}
    while len(found) < len(primaries):
        tenant = "t-" + uuid.uuid4().hex[:12]
        found.setdefault(owner(client, keyspace.tenant(tenant)).name, tenant)
    return [found[name] for name in primaries]


def owner(client: RedisCluster, key: str) -> ClusterNode:
    """The primary serving the key's slot, as the client's slot map says."""
    node = client.get_node_from_key(key)
    assert node is not None, f"no node serves {key}"
    return node


async def keys_in_slot_per_node(client: RedisCluster, tenant: str) -> list[int]:
    """How many keys of the tenant's slot each primary holds (CLUSTER COUNTKEYSINSLOT asked of
    each node itself: a node counts only its own keys)."""
    slot = client.keyslot(keyspace.tenant(tenant))
    return [
        int(await client.execute_command("CLUSTER COUNTKEYSINSLOT", slot, target_nodes=node))
        for node in client.get_primaries()
    ]


async def test_the_run_is_on_a_three_primary_cluster(system: Any) -> None:
    stores = system.stores
    assert stores.redis_cluster and isinstance(stores.redis_server, RedisClusterServer)
    assert service_env(stores)["KEYLEASH_REDIS_CLUSTER"] == "on"
    assert len(stores.redis_server.nodes) == 3


async def test_tenants_on_every_primary_are_decided_charged_and_audited(
    vault: Any, metering: Any, redis_client: RedisCluster, system: Any
) -> None:
    tenants = await tenants_on_every_primary(redis_client)
    assert len(tenants) == 3
    minted = [await mint(vault, admin_token(), t, spend_caps=[cap("1.00")]) for t in tenants]
    for key in minted:
        held = await authorize(vault, key.secret, "0.40")
        assert held.decision == ALLOW
        await metering.Charge(
            metering_pb2.ChargeRequest(
                request_id="ch-" + uuid.uuid4().hex,
                key_id=key.key.key_id,
                amount=usd("0.30"),
                reservation_id=held.reservation_id,
            ),
            metadata=bearer(SERVICE_TOKEN),
        )
        assert (await authorize(vault, key.secret, "0.70")).decision == ALLOW  # 0.30 + 0.70
        assert (await authorize(vault, key.secret, "0.01")).decision == DENY
    for index, tenant in enumerate(tenants):  # each tenant's keys live on its own primary only
        counts = await keys_in_slot_per_node(redis_client, tenant)
        assert counts[index] > 0 and sum(counts) == counts[index]
    for tenant in tenants:  # the drainer found the audit stream on every primary
        rows = await wait_for_rows(system.stores.database_url, tenant, 3)
        assert sorted(rows.values()) == ["allow", "allow", "deny"]


@pytest.fixture
def script_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Every script call the in-process servers make during the test: (script, KEYS)."""
    calls: list[tuple[str, list[str]]] = []
    run, run_many = Scripts.run, Scripts.run_many

    async def recording_run(self: Scripts, name: str, keys: list[str], args: list[Any]) -> Any:
        calls.append((name, list(keys)))
        return await run(self, name, keys, args)

    async def recording_run_many(
        self: Scripts, name: str, batch: Sequence[tuple[list[str], list[Any]]], **options: Any
    ) -> list[Any]:
        calls.extend((name, list(keys)) for keys, _args in batch)
        return await run_many(self, name, batch, **options)

    monkeypatch.setattr(Scripts, "run", recording_run)
    monkeypatch.setattr(Scripts, "run_many", recording_run_many)
    return calls


async def test_every_script_call_keeps_its_keys_in_one_slot(
    vault: Any,
    metering: Any,
    redis_client: RedisCluster,
    tenant: str,
    script_calls: list[tuple[str, list[str]]],
) -> None:
    await metering.SetTenantBudget(
        metering_pb2.SetTenantBudgetRequest(tenant_id=tenant, daily_threshold=usd("50.00")),
        metadata=bearer(admin_token()),
    )
    windows = (
        vault_pb2.SpendCap.WINDOW_CALENDAR_DAY,
        vault_pb2.SpendCap.WINDOW_ROLLING_24H,
        vault_pb2.SpendCap.WINDOW_LIFETIME,
    )
    parent = await mint(vault, admin_token(), tenant, spend_caps=[cap("9.00", w) for w in windows])
    child = await mint(vault, parent.secret, rate_limits=[per(50, 60)], spend_caps=[cap("5.00")])
    held = await authorize(vault, child.secret, "0.50", agent_run_id="run-1")
    assert held.decision == ALLOW
    refused = await authorize(vault, child.secret, scope="other.scope")  # a pure policy denial
    assert refused.decision == DENY
    stream = vault.AuthorizeStream(
        iter([vault_pb2.AuthorizeRequest(key=child.secret, scope="api.call")] * 3),
        metadata=bearer(child.secret),
    )
    assert [r.decision async for r in stream] == [ALLOW] * 3
    for amount, reservation in (("0.20", held.reservation_id), ("0.10", "")):
        await metering.Charge(
            metering_pb2.ChargeRequest(
                request_id="ch-" + uuid.uuid4().hex,
                key_id=child.key.key_id,
                amount=usd(amount),
                reservation_id=reservation,
                agent_run_id="run-1",
            ),
            metadata=bearer(SERVICE_TOKEN),
        )
    names = {name for name, _keys in script_calls}
    assert names >= {"load_tenant", "load_key", "authorize", "audit_only", "settle"}
    for name, keys in script_calls:
        slots = {await redis_client.cluster_keyslot(key) for key in keys}  # the server's answer
        assert len(slots) == 1, f"{name} spans slots {slots}: {keys}"


async def test_a_call_spanning_two_slots_is_refused_not_run(
    redis_client: RedisCluster, tenant: str
) -> None:
    other = next(
        t
        for t in ("t-" + uuid.uuid4().hex[:12] for _ in range(100))
        if redis_client.keyslot(keyspace.tenant(t)) != redis_client.keyslot(keyspace.tenant(tenant))
    )
    keys = [keyspace.tenant(tenant), keyspace.tenant(other)]
    with pytest.raises(StoreUnavailable):  # redis-py refuses it before sending: fail closed
        await Scripts(redis_client).run("load_tenant", keys, ["0", "USD", "0", "d1", "0", "0"])
    with pytest.raises(redis.exceptions.ClusterCrossSlotError):  # and so would the server
        await redis_client.execute_command(
            "EVAL", "return 1", 2, *keys, target_nodes=owner(redis_client, keys[0])
        )
    assert await redis_client.exists(*keys) == 0


async def test_scripts_come_back_on_every_primary_after_a_script_flush(
    vault: Any, redis_client: RedisCluster
) -> None:
    tenants = await tenants_on_every_primary(redis_client)
    minted = [await mint(vault, admin_token(), t, rate_limits=[per(3, 60)]) for t in tenants]
    for key in minted:
        assert (await authorize(vault, key.secret)).decision == ALLOW  # 1 of 3 used
    scripts = Scripts(redis_client)
    shas = [scripts[name].sha for name in ("authorize", "load_tenant")]
    await redis_client.script_flush()  # every primary forgets every script (as after restarts)
    assert (await authorize(vault, minted[0].secret)).decision == ALLOW  # NOSCRIPT, SCRIPT LOAD
    assert await primaries_have_script(redis_client, shas[0])  # loaded everywhere, not just there
    await redis_client.script_flush()
    stream = vault.AuthorizeStream(
        iter([vault_pb2.AuthorizeRequest(key=k.secret, scope="api.call") for k in minted[1:]]),
        metadata=bearer(SERVICE_TOKEN),
    )
    assert [r.decision async for r in stream] == [ALLOW, ALLOW]
    for key in minted:  # every call above was decided exactly once: one more fits, then none
        assert (await authorize(vault, key.secret)).decision == ALLOW
        assert (await authorize(vault, key.secret)).reason == vault_pb2.DENY_REASON_RATE_LIMITED
    # The pipelined path, made to span every primary: NOSCRIPT on each, each call run once.
    await redis_client.script_flush()
    fresh = await tenants_on_every_primary(redis_client)
    calls = [([keyspace.tenant(t)], ["0", "USD", "0", "d1", "0", "0"]) for t in fresh]
    assert await scripts.run_many("load_tenant", calls) == [1, 1, 1]
    assert await primaries_have_script(redis_client, shas[1])
    assert await scripts.run_many("load_tenant", calls) == [0, 0, 0]  # already loaded, once


async def primaries_have_script(client: RedisCluster, sha: str) -> bool:
    """SCRIPT EXISTS asked of each primary on its own."""
    answers = [
        await client.execute_command("SCRIPT EXISTS", sha, target_nodes=node)
        for node in client.get_primaries()
    ]
    return len(answers) == 3 and all(all(answer) for answer in answers)


@pytest.fixture
async def own_cluster_vault(
    stores: Stores, own_redis: ManagedServer
) -> AsyncIterator[tuple[Any, RedisClusterServer]]:
    """A vault on a Redis Cluster of its own, so the test may kill one of its primaries."""
    assert isinstance(own_redis, RedisClusterServer)
    env = service_env(stores) | {
        "KEYLEASH_REDIS_URL": own_redis.url,
        "KEYLEASH_STORE_TIMEOUT_SECONDS": "1",
        "KEYLEASH_AUDIT_DRAIN": "off",
    }
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield vault_pb2_grpc.VaultServiceStub(channel), own_redis
    finally:
        await channel.close()
        await built.stop(1)


async def test_the_drainer_finds_streams_on_every_primary_by_scanning(
    own_cluster_vault: tuple[Any, RedisClusterServer], stores: Stores
) -> None:
    vault, cluster = own_cluster_vault
    client = RedisCluster.from_url(cluster.url)
    pool = await create_pool(stores.database_url, timeout_seconds=2, max_size=2)
    try:
        tenants = await tenants_on_every_primary(client)
        decided = {}
        for tenant in tenants:
            minted = await mint(vault, admin_token(), tenant)
            decided[tenant] = (await authorize(vault, minted.secret)).decision_id
        await client.delete(keyspace.AUDIT_TENANTS)  # lost, as after a flush: SCAN must find them
        drainer = AuditDrainer(client, pool, consumer="test")
        assert await drainer.drain_once() == 3  # one XREADGROUP per stream, on three primaries
        for tenant in tenants:
            assert list(await recorded(stores.database_url, tenant)) == [decided[tenant]]
    finally:
        await pool.close()
        await close_redis(client)


async def test_a_dead_primary_takes_down_only_its_own_tenants(
    own_cluster_vault: tuple[Any, RedisClusterServer],
) -> None:
    vault, cluster = own_cluster_vault
    client = RedisCluster.from_url(cluster.url)
    try:
        tenants = await tenants_on_every_primary(client)
        owners = [owner(client, keyspace.tenant(t)).port for t in tenants]
    finally:
        await close_redis(client)
    minted = [await mint(vault, admin_token(), t, spend_caps=[cap("1.00")]) for t in tenants]
    for key in minted:
        assert (await authorize(vault, key.secret, "0.50")).decision == ALLOW
    victim = next(node for node in cluster.nodes if node.port == owners[0])
    victim.kill()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await authorize(vault, minted[0].secret, "0.10")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # pipelined (AuthorizeStream) alike
        await stream_decisions(vault, [minted[0].secret])
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    for key in minted[1:]:  # the other primaries' tenants keep their service
        assert (await authorize(vault, key.secret, "0.10")).decision == ALLOW
    assert await stream_decisions(vault, [k.secret for k in minted[1:]]) == [ALLOW, ALLOW]
    victim.restart()  # empty: the tenant is rebuilt from Postgres
    cluster.wait_until_ok()
    assert (await authorize(vault, minted[0].secret, "0.10")).decision == ALLOW
    assert await stream_decisions(vault, [k.secret for k in minted]) == [ALLOW] * 3


async def stream_decisions(vault: Any, secrets_: list[str]) -> list[int]:
    """One AuthorizeStream (service token) with one request per secret: the decisions."""
    requests = [vault_pb2.AuthorizeRequest(key=s, scope="api.call") for s in secrets_]
    call = vault.AuthorizeStream(iter(requests), metadata=bearer(SERVICE_TOKEN))
    return [reply.decision async for reply in call]


@pytest.fixture
def replicated_cluster() -> Iterator[RedisClusterServer]:
    """Three primaries with a replica each; a failed primary is replaced after one second."""
    base = Path(tempfile.mkdtemp(prefix="keyleash-replicated-", dir="/tmp"))
    cluster = start_redis_cluster(base, replicas=1, node_timeout_ms=1000)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_a_promoted_replica_takes_over_without_a_restart_and_keeps_the_count(
    replicated_cluster: RedisClusterServer, stores: Stores, tenant: str
) -> None:
    env = service_env(stores) | {
        "KEYLEASH_REDIS_URL": replicated_cluster.url,
        "KEYLEASH_STORE_TIMEOUT_SECONDS": "1",
    }
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    client = RedisCluster.from_url(replicated_cluster.url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            vault = vault_pb2_grpc.VaultServiceStub(channel)
            await client.initialize()
            while owner(client, keyspace.tenant(tenant)).port == replicated_cluster.port:
                tenant = "t-" + uuid.uuid4().hex[:12]  # not the seed node: a plainer failover
            minted = await mint(vault, admin_token(), tenant, rate_limits=[per(10, 3600)])
            for _ in range(4):
                assert (await authorize(vault, minted.secret)).decision == ALLOW
            primary = owner(client, keyspace.tenant(tenant))
            # Every write acknowledged by the replica before the primary dies (replication is
            # asynchronous; RELIABILITY.md says what a failover can lose without this).
            assert await client.execute_command("WAIT", 1, 5000, target_nodes=primary) == 1
            victim = next(n for n in replicated_cluster.nodes if n.port == primary.port)
            victim.kill()
            outcomes: list[str] = []
            deadline = time.monotonic() + 30
            while True:
                try:
                    reply = await authorize(vault, minted.secret)
                    break
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error  # fail closed
                    outcomes.append(error.code().name)
                    assert time.monotonic() < deadline, "no replica took over"
                    await asyncio.sleep(0.2)
            assert reply.decision == ALLOW
            rate = next(q for q in reply.quotas if q.quota.startswith("rate"))
            assert rate.used == 5  # the four before the failover, counted on the replica
            for _ in range(5):
                assert (await authorize(vault, minted.secret)).decision == ALLOW
            denied = await authorize(vault, minted.secret)
            assert denied.reason == vault_pb2.DENY_REASON_RATE_LIMITED
            print(f"\nFAILOVER: {len(outcomes)} UNAVAILABLE answers, then ALLOW on the new primary")
    finally:
        await close_redis(client)
        await built.stop(1)
