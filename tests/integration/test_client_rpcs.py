"""keyleash.client over real gRPC, continued: paging, streams, retries, the generated sync
clients and every other RPC. (Mint, guard(), errors and agent runs: test_client.py, whose
helpers and fixtures these use.)"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from keyleash.client import (
    KeyBlocked,
    MeteringClient,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    SyncMeteringClient,
    SyncVaultClient,
    Unavailable,
    VaultClient,
    agent_run,
    guard,
    sync_guard,
)
from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN, System

from .test_client import ALLOW, RecordingInterceptor, daily_cap, mint, per_minute, usd


# The typed clients (conftest's `vault`/`metering` are raw stubs), as in test_client.py.
@pytest.fixture
async def vault(system: System) -> AsyncIterator[VaultClient]:
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
async def metering(system: System) -> AsyncIterator[MeteringClient]:
    async with MeteringClient(system.metering_address, token=ADMIN_TOKEN) as client:
        yield client


async def test_iter_keys_walks_every_page(vault: VaultClient, tenant: str) -> None:
    parent = await mint(vault, tenant)
    for _ in range(5):
        await mint(vault, tenant, token=parent.secret)
    keys = [k.key_id async for k in vault.iter_keys(page_size=2, token=parent.secret)]
    assert len(keys) == 6 and len(set(keys)) == 6


async def test_authorize_stream_in_order(vault: VaultClient, tenant: str) -> None:
    minted = await mint(vault, tenant, rate_limits=[per_minute(3)])
    requests = [vault_pb2.AuthorizeRequest(key=minted.secret, scope="api.call") for _ in range(5)]
    replies = [r.decision async for r in vault.authorize_stream(requests)]
    assert replies == [ALLOW] * 3 + [vault_pb2.DECISION_DENY] * 2


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_unavailable_is_retried_only_where_safe() -> None:
    recorder = RecordingInterceptor()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{unused_port()}", interceptors=[recorder])
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02, deadline=5)
    async with VaultClient(channel=channel, token=ADMIN_TOKEN, retry=policy, timeout=2) as vault:
        attempts = {}
        cases: dict[str, Callable[[], Any]] = {
            "GetKey": lambda: vault.get_key("tenants/t/keys/k"),
            "RevokeKey": lambda: vault.revoke_key("tenants/t/keys/k"),
            "Authorize": lambda: vault.authorize(key="vk_x", scope="s"),
            "Authorize+id": lambda: vault.authorize(key="vk_x", scope="s", request_id="r1"),
            "MintKey+id": lambda: vault.mint_key(agent_id="a", request_id="m1"),
        }
        for name, call in cases.items():
            recorder.calls.clear()
            with pytest.raises(Unavailable) as caught:
                await call()
            assert caught.value.retryable
            attempts[name] = len(recorder.calls)
    await channel.close()
    assert attempts == {
        "GetKey": 3,
        "RevokeKey": 1,
        "Authorize": 1,
        "Authorize+id": 3,
        "MintKey+id": 3,
    }


def _sync_flow(system: System, tenant: str) -> dict[str, Any]:
    with (
        SyncVaultClient(system.vault_address, token=ADMIN_TOKEN) as vault,
        SyncMeteringClient(system.metering_address, token=SERVICE_TOKEN) as metering,
    ):
        minted = vault.mint_key(
            tenant_id=tenant,
            agent_id="sync-agent",
            scopes=["api.call"],
            policy=vault_pb2.Policy(rate_limits=[per_minute(2)], spend_caps=[daily_cap(1_000_000)]),
        )
        allowed = vault.authorize(key=minted.secret, scope="api.call")
        run_id = "run-sync-" + uuid.uuid4().hex[:6]
        with (
            agent_run(run_id),
            sync_guard(
                vault,
                metering,
                key=minted.secret,
                scope="api.call",
                estimated_cost=("USD", 250_000),
                request_id="sync-step",
            ) as call,
        ):
            call.actual_cost = ("USD", 200_000)
        try:
            sync_guard_denied = None
            with sync_guard(
                vault, metering, key=minted.secret, scope="api.call", estimated_cost=usd(1)
            ):
                pass
        except RateLimited as denied:
            sync_guard_denied = denied
        try:
            vault.mint_key(agent_id="child", scopes=["other.scope"], token=minted.secret)
            permission = None
        except PermissionDenied as error:
            permission = error
        spend = metering.get_spend(agent_run_id=run_id, subject_tenant_id=tenant)
        keys = list(vault.iter_keys(tenant_id=tenant, page_size=1))
    return {
        "allowed": allowed.decision,
        "charge": call.charge,
        "run_id": run_id,
        "denied": sync_guard_denied,
        "permission": permission,
        "spend": [(t.currency_code, t.micros) for t in spend.totals],
        "keys": len(keys),
    }


async def test_sync_clients_basic_flow(system: System, tenant: str) -> None:
    # The servers run in this event loop: the blocking clients must run in another thread.
    result = await asyncio.to_thread(_sync_flow, system, tenant)
    assert result["allowed"] == ALLOW
    charge = result["charge"]
    assert charge is not None and not charge.duplicate
    assert charge.event.amount.micros == 200_000 and charge.event.agent_run_id == result["run_id"]
    denied = result["denied"]
    assert isinstance(denied, RateLimited) and (denied.retry_after or 0) > 0
    permission = result["permission"]
    assert isinstance(permission, PermissionDenied) and permission.reason == "EXCEEDS_PARENT"
    assert permission.metadata["field"] == "scopes"
    assert result["spend"] == [("USD", 200_000)]
    assert result["keys"] == 1


async def test_every_other_rpc_round_trips(
    system: System, vault: VaultClient, metering: MeteringClient, tenant: str
) -> None:
    parent = await mint(vault, tenant, spend_caps=[daily_cap(5_000_000)])
    child = await mint(vault, tenant, token=parent.secret, spend_caps=[daily_cap(1_000_000)])
    frozen = await vault.freeze_key(parent.key.name, reason="look")
    assert frozen.state == vault_pb2.Key.STATE_FROZEN
    with pytest.raises(KeyBlocked) as blocked:
        async with guard(
            vault, metering, key=child.secret, scope="api.call", estimated_cost=usd(1)
        ):
            pass
    assert blocked.value.reason == "KEY_FROZEN"
    assert (await vault.unfreeze_key(parent.key.name)).state == vault_pb2.Key.STATE_ACTIVE
    updated = await vault.update_key_policy(
        name=child.key.name,
        policy=vault_pb2.Policy(spend_caps=[daily_cap(2_000_000)]),
        update_mask=field_mask_pb2.FieldMask(paths=["spend_caps"]),
        reason="approved",
        token=parent.secret,
    )
    assert updated.policy.spend_caps[0].limit.micros == 2_000_000
    listed = await vault.list_keys(tenant_id=tenant, page_size=10)
    assert {k.key_id for k in listed.keys} == {parent.key.key_id, child.key.key_id}

    tenant_view = await metering.set_tenant_budget(
        tenant_id=tenant, daily_threshold=usd(50_000_000)
    )
    assert tenant_view.daily_threshold.micros == 50_000_000
    with agent_run() as run_id:
        usage = await metering.record_usage(
            key_id=child.key.key_id, model="gpt-4o", input_tokens=1000, output_tokens=100
        )
        assert usage.event.kind == metering_pb2.BillingEvent.KIND_USAGE
        assert usage.event.agent_run_id == run_id and usage.event.amount.micros > 0
        async with MeteringClient(system.metering_address, token=SERVICE_TOKEN) as service:
            items = [
                metering_pb2.RecordUsageRequest(
                    key_id=child.key.key_id, model="gpt-4o-mini", input_tokens=10
                )
                for _ in range(3)
            ]
            acks = [ack async for ack in service.stream_usage(items)]
    assert sum(a.accepted for a in acks) == 3 and sum(len(a.request_ids) for a in acks) == 3
    exported = [
        e
        async for e in metering.export_billing_events(
            metering_pb2.BillingEventFilter(tenant_id=tenant)
        )
    ]
    assert len(exported) == 4 and {e.agent_run_id for e in exported} == {run_id}
    paged = [e.event_id async for e in metering.iter_billing_events(
        filter=metering_pb2.BillingEventFilter(tenant_id=tenant), page_size=3
    )]  # fmt: skip
    assert paged == [e.event_id for e in exported]
    spend = await metering.get_spend(agent_run_id=run_id, subject_tenant_id=tenant)
    assert spend.event_count == 4
    assert (await metering.get_tenant(tenant)).spend_today.micros == spend.totals[0].micros
