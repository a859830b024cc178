"""Every Authorize decision lands in `authorizations` exactly once, even when the drainer dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_ops.devstores import ManagedServer
from tests.conftest import Stores, bearer, service_env
from tests.integration.vault_helpers import admin_token, authorize, cap, mint, per, usd
from vault_service.server import create_server
from vault_service.settings import VaultSettings

ALLOW = vault_pb2.DECISION_ALLOW
ROOT = Path(__file__).resolve().parents[2]


async def load(vault: Any, secrets_: list[str], calls: int, callers: int) -> dict[str, str]:
    """`calls` Authorize calls spread over the keys from `callers` tasks: decision id -> verdict."""
    answers: dict[str, str] = {}

    async def caller(index: int) -> None:
        for n in range(index, calls, callers):
            secret = secrets_[n % len(secrets_)]
            reply = await authorize(
                vault, secret, "0.01", agent_run_id=f"run-{n % 3}", vendor="stripe"
            )
            answers[reply.decision_id] = "allow" if reply.decision == ALLOW else "deny"

    await asyncio.gather(*(caller(i) for i in range(callers)))
    return answers


async def recorded(database_url: str, tenant: str) -> dict[str, str]:
    con = await asyncpg.connect(database_url)
    try:
        rows = await con.fetch(
            "SELECT decision_id, decision FROM authorizations WHERE tenant_id = $1", tenant
        )
    finally:
        await con.close()
    return {r["decision_id"]: r["decision"] for r in rows}


async def wait_for_rows(
    database_url: str, tenant: str, expected: int, seconds: float = 60, poll: float = 0.2
) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        rows = await recorded(database_url, tenant)
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(poll)


async def test_ten_thousand_decisions_are_recorded_exactly(
    vault: Any, tenant: str, system: Any
) -> None:
    limited = await mint(vault, admin_token(), tenant, rate_limits=[per(1000, 3600)])
    capped = await mint(vault, admin_token(), tenant, spend_caps=[cap("20.00")])
    scoped = await mint(vault, admin_token(), tenant, allowed_vendors=["twilio"])  # pure denials
    answers = await load(vault, [limited.secret, capped.secret, scoped.secret], 10_000, 32)
    assert len(answers) == 10_000
    assert 0 < sum(v == "allow" for v in answers.values()) < 10_000
    rows = await wait_for_rows(system.stores.database_url, tenant, 10_000)
    assert rows == answers


async def test_run_ledger_lists_every_attempt_in_order(
    vault: Any, metering: Any, tenant: str, system: Any
) -> None:
    minted = await mint(vault, admin_token(), tenant, rate_limits=[per(3, 60)])
    for n in range(5):
        reply = await authorize(
            vault, minted.secret, "0.25", agent_run_id="run-ledger", method="POST", path="/v1/x"
        )
        if reply.decision == ALLOW:
            await metering.Charge(
                metering_pb2.ChargeRequest(
                    request_id=f"ledger-{tenant}-{n}", key_id=minted.key.key_id,
                    reservation_id=reply.reservation_id, amount=usd(f"0.{10 + n}"),
                    agent_run_id="run-ledger",
                ),
                metadata=bearer(admin_token()),
            )  # fmt: skip
    await wait_for_rows(system.stores.database_url, tenant, 5)
    page = await vault.ListAuthorizations(
        vault_pb2.ListAuthorizationsRequest(tenant_id=tenant, agent_run_id="run-ledger"),
        metadata=bearer(admin_token()),
    )
    assert [a.decision for a in page.authorizations] == [ALLOW] * 3 + [vault_pb2.DECISION_DENY] * 2
    times = [a.decision_time.ToMilliseconds() for a in page.authorizations]
    assert times == sorted(times)
    assert page.authorizations[4].reason == vault_pb2.DENY_REASON_RATE_LIMITED
    assert page.authorizations[0].estimated_cost.micros == 250_000
    assert [a.settled_cost.micros for a in page.authorizations] == [100_000, 110_000, 120_000, 0, 0]
    assert [a.settled_events for a in page.authorizations] == [1, 1, 1, 0, 0]
    own = await vault.ListAuthorizations(
        vault_pb2.ListAuthorizationsRequest(decision=vault_pb2.DECISION_DENY, page_size=1),
        metadata=bearer(minted.secret),
    )
    assert len(own.authorizations) == 1 and own.next_page_token

    newest: list[Any] = []
    token = ""
    while True:  # newest first, two at a time: the same five, the other way round
        back = await vault.ListAuthorizations(
            vault_pb2.ListAuthorizationsRequest(
                tenant_id=tenant, agent_run_id="run-ledger", page_size=2, page_token=token,
                order_by="decision_time desc",
            ),
            metadata=bearer(admin_token()),
        )  # fmt: skip
        newest.extend(back.authorizations)
        token = back.next_page_token
        if not token:
            break
    ids = [a.decision_id for a in page.authorizations]
    assert [a.decision_id for a in newest] == ids[::-1]
    for bad in ("decision_time up", "estimated_cost desc"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await vault.ListAuthorizations(
                vault_pb2.ListAuthorizationsRequest(tenant_id=tenant, order_by=bad),
                metadata=bearer(admin_token()),
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def undrained_vault(
    stores: Stores, own_redis: ManagedServer
) -> AsyncIterator[tuple[Any, ManagedServer, dict[str, str]]]:
    """A vault on its own Redis that records decisions but does not drain them itself."""
    env = service_env(stores) | {"KEYLEASH_REDIS_URL": own_redis.url, "KEYLEASH_AUDIT_DRAIN": "off"}
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield vault_pb2_grpc.VaultServiceStub(channel), own_redis, env
    finally:
        await channel.close()
        await built.stop(1)


def start_drainer(env: dict[str, str], batch: int = 100) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vault_service.audit"],
        cwd=ROOT,
        env=os.environ | env | {"KEYLEASH_AUDIT_BATCH_SIZE": str(batch)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_sigkill_of_the_drainer_loses_and_doubles_nothing(
    undrained_vault: tuple[Any, ManagedServer, dict[str, str]], tenant: str, stores: Stores
) -> None:
    vault, _redis, env = undrained_vault
    minted = await mint(vault, admin_token(), tenant, rate_limits=[per(2000, 3600)])
    answers = await load(vault, [minted.secret], 3000, 32)
    assert await recorded(stores.database_url, tenant) == {}
    # Small batches, watched closely: the kill lands while most entries are still undrained.
    drainer = start_drainer(env, batch=10)
    try:
        partial = await wait_for_rows(stores.database_url, tenant, 1, poll=0.005)
        drainer.send_signal(signal.SIGKILL)
        drainer.wait(timeout=10)
        assert 0 < len(partial) < 3000
    finally:
        if drainer.poll() is None:
            drainer.kill()
    drainer = start_drainer(env)
    try:
        rows = await wait_for_rows(stores.database_url, tenant, 3000)
    finally:
        drainer.send_signal(signal.SIGTERM)
        drainer.wait(timeout=20)
    assert rows == answers


async def test_full_audit_stream_fails_closed(
    stores: Stores, tenant: str, own_redis: ManagedServer
) -> None:
    env = service_env(stores) | {
        "KEYLEASH_REDIS_URL": own_redis.url,
        "KEYLEASH_AUDIT_DRAIN": "off",
        "KEYLEASH_AUDIT_MAX_STREAM_LENGTH": "5",
    }
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        vault = vault_pb2_grpc.VaultServiceStub(channel)
        minted = await mint(vault, admin_token(), tenant)
        for _ in range(5):
            assert (await authorize(vault, minted.secret)).decision == ALLOW
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await authorize(vault, minted.secret)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "audit" in (caught.value.details() or "")
    finally:
        await channel.close()
        await built.stop(1)


async def test_every_column_of_a_decision_row_and_an_entry_in_the_older_format(
    vault: Any, tenant: str, system: Any, redis_client: Any
) -> None:
    parent = await mint(vault, admin_token(), tenant, rate_limits=[per(1, 60)])
    child = await mint(vault, parent.secret, tenant)  # minted by its parent's key
    odd_path = '/v1/"quoted"/\\slash/ünï/\x1f'
    allowed = await authorize(
        vault, child.secret, "0.25", agent_run_id="run-Ω", vendor="stripe", method="POST",
        path=odd_path, request_id="req-1", attributes={"customer": "cus_Ω", "currency": "usd"},
    )  # fmt: skip
    denied = await authorize(
        vault, child.secret, "0.25", agent_run_id="run-Ω", attributes={"x402_payee": "0xabc"}
    )
    assert allowed.decision == ALLOW and denied.decision == vault_pb2.DECISION_DENY
    # An entry as vaults wrote them before the two-array format: one stream field per column.
    await redis_client.xadd(
        f"kl:{{{tenant}}}:audit",
        {
            "decision_id": "d_legacy", "time_ms": "1764331200000", "decision": "A",
            "reason": "", "quota_subject": "", "quota": "", "quota_limit": "0",
            "quota_used": "0", "quota_remaining": "0", "reservation_id": "", "tenant_id": tenant,
            "key_id": "k_legacy", "key_path": "k_root,k_legacy", "parent_key_id": "k_root",
            "agent_id": "", "agent_run_id": "", "trace_id": "", "scope": "api.call",
            "vendor": "", "method": "", "path": "", "estimated_micros": "7",
            "currency": "USD", "request_id": "",
        },
    )  # fmt: skip
    await wait_for_rows(system.stores.database_url, tenant, 3)
    con = await asyncpg.connect(system.stores.database_url)
    try:
        rows = {
            r["decision_id"]: r
            for r in await con.fetch("SELECT * FROM authorizations WHERE tenant_id = $1", tenant)
        }
    finally:
        await con.close()
    row = rows[allowed.decision_id]
    assert row["decision"] == "allow" and row["deny_reason"] == ""
    assert row["key_id"] == child.key.key_id and row["parent_key_id"] == parent.key.key_id
    assert row["key_path"] == [parent.key.key_id, child.key.key_id]
    assert row["agent_id"] == child.key.agent_id != "" and row["agent_run_id"] == "run-Ω"
    assert (row["scope"], row["vendor"], row["method"]) == ("api.call", "stripe", "POST")
    assert row["path"] == odd_path and row["request_id"] == "req-1"
    assert row["estimated_micros"] == 250_000 and row["currency_code"] == "USD"
    assert row["reservation_id"] == allowed.reservation_id != ""
    assert json.loads(row["attributes"]) == {"customer": "cus_Ω", "currency": "usd"}
    assert abs(row["decision_time"].timestamp() - time.time()) < 600
    row = rows[denied.decision_id]
    assert row["decision"] == "deny" and row["deny_reason"] == "RATE_LIMITED"
    assert (row["quota_limit"], row["quota_used"], row["quota_remaining"]) == (1, 1, 0)
    assert row["quota_subject"] != "" and row["reservation_id"] == ""
    assert json.loads(row["attributes"]) == {"x402_payee": "0xabc"}  # a denial shows them too
    listed = await vault.ListAuthorizations(
        vault_pb2.ListAuthorizationsRequest(tenant_id=tenant, agent_run_id="run-Ω"),
        metadata=bearer(admin_token()),
    )
    assert [dict(a.attributes) for a in listed.authorizations] == [
        {"customer": "cus_Ω", "currency": "usd"}, {"x402_payee": "0xabc"}
    ]  # fmt: skip
    legacy = rows["d_legacy"]
    assert legacy["key_path"] == ["k_root", "k_legacy"] and legacy["estimated_micros"] == 7
    assert legacy["decision_time"].timestamp() == 1764331200
    assert json.loads(legacy["attributes"]) == {}
