"""`python -m keyleash_usage_hooks` as a process, killed with SIGKILL while Metering holds its
batch (Postgres is made to wait on a lock, so the kill lands mid-batch every time): the sender
gets no answer, resends after a restart, and every event is recorded and settled exactly once."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
import pytest

from keyleash.client import MeteringClient
from keyleash.client.usage_hooks import UsageWebhookSender
from tests.conftest import SERVICE_TOKEN, System
from tests.usage_hooks.conftest import HookTenant, batch, expected_micros, post, signed, usage

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def receiver_process(system: System, port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")} | {
        "KEYLEASH_METERING_TARGET": system.metering_address,
        "KEYLEASH_VAULT_TARGET": system.vault_address,
        "KEYLEASH_SERVICE_TOKEN": SERVICE_TOKEN,
        "KEYLEASH_USAGE_HOOKS_LISTEN": f"127.0.0.1:{port}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keyleash_usage_hooks", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await _until_serving(process, port)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def _until_serving(process: asyncio.subprocess.Process, port: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                assert process.returncode is None, "the receiver exited"
            await asyncio.sleep(0.05)
    raise AssertionError("the receiver did not start")


async def _waiting_on_lock(db: asyncpg.Connection) -> bool:
    waiting = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query ILIKE '%billing_requests%'"
    )
    return bool(waiting)


async def test_sigkill_mid_batch_then_resend_records_each_event_once(
    system: System,
    hook_tenant: HookTenant,
    db: asyncpg.Connection,
    admin_metering: MeteringClient,
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    first = [usage(hook_tenant.key_id, i) for i in range(200)]
    doomed = [usage(hook_tenant.key_id, i) for i in range(200, 1200)]
    blocker = await asyncpg.connect(system.stores.database_url)
    try:
        async with receiver_process(system, port) as process:
            body = batch(first)
            status, _ = await post(
                url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body)
            )
            assert status == 200
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE billing_requests IN SHARE ROW EXCLUSIVE MODE")
            body = batch(doomed)
            sending = asyncio.ensure_future(
                post(url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body))
            )
            for _ in range(600):
                if await _waiting_on_lock(db):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the batch never reached Postgres")
            process.kill()  # SIGKILL: the receiver dies with Metering's answer outstanding
            await process.wait()
            with pytest.raises(aiohttp.ClientError):
                await sending
            await lock.rollback()  # Metering's commit goes on without anyone to answer
        async with receiver_process(system, port):
            async with UsageWebhookSender(url, hook_tenant.tenant_id, hook_tenant.secret) as s:
                resent = await s.send(doomed)
    finally:
        await blocker.close()
    assert resent.accepted + resent.duplicates == 1000
    # The case this is about: committed while nobody could be told, found on the resend.
    assert resent.duplicates > 0
    total = expected_micros(range(1200))
    row = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT request_id) AS ids, sum(amount_micros) AS total"
        " FROM billing_events WHERE tenant_id = $1",
        hook_tenant.tenant_id,
    )
    assert row is not None and tuple(row) == (1200, 1200, total)
    tenant = await admin_metering.get_tenant(hook_tenant.tenant_id)
    assert tenant.spend_today.micros == total  # settled in Redis exactly once too


async def test_a_missing_setting_exits_2_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")}
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keyleash_usage_hooks",
        env=env | {"KEYLEASH_METERING_TARGET": "127.0.0.1:1"}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await bad.communicate()
    assert bad.returncode == 2 and b"KEYLEASH_SERVICE_TOKEN" in stderr
    assert stderr.count(b"\n") == 1
