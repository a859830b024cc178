"""The gateway process killed (SIGKILL) while a call is at the vendor: the agent retries with the
same Idempotency-Key through a new gateway process and the call is charged exactly once, its
first hold settled rather than doubled (issue #15)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
import stripe

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from tests.conftest import SERVICE_TOKEN
from tests.gateway.conftest import SealedSystem
from tests.gateway.standins import StandIn
from tests.gateway.stripe_helpers import USD, charge, events, spent, stripe_tenant, usd_cap


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def gateway_process(
    system: SealedSystem, **settings: str
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """`python -m keyleash_gateway` on a free port, once /healthz answers; `settings` are more
    KEYLEASH_* variables (or override these)."""
    port = _free_port()
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")}
        | {
            "KEYLEASH_VAULT_TARGET": system.vault_address,
            "KEYLEASH_METERING_TARGET": system.metering_address,
            "KEYLEASH_SERVICE_TOKEN": SERVICE_TOKEN,
            "KEYLEASH_GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "KEYLEASH_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "30",
        }
        | settings
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keyleash_gateway", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                try:
                    async with session.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "the gateway exited"
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the gateway did not start")
        yield url, process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_killed_mid_call_and_retried_with_the_same_idempotency_key_is_charged_once(
    sealed_system: SealedSystem,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=usd_cap(50 * USD)
    )
    idempotency_key = f"idem-{t.run_id}"
    stripe_upstream.release_slow.clear()
    try:
        async with gateway_process(sealed_system) as (url, process):
            first = asyncio.create_task(
                charge(t, url, 3000, mode="slow", idempotency_key=idempotency_key)
            )
            for _ in range(400):  # the call is at the vendor, its hold placed
                if stripe_upstream.seen_by(t.run_id):
                    break
                await asyncio.sleep(0.025)
            assert stripe_upstream.seen_by(t.run_id), "the call never reached the vendor"
            process.send_signal(signal.SIGKILL)
            await process.wait()
            with pytest.raises(stripe.APIConnectionError):
                await first
    finally:
        stripe_upstream.release_slow.set()  # the vendor completes the call the gateway lost
    for _ in range(400):
        if idempotency_key in stripe_upstream.replies:
            break
        await asyncio.sleep(0.025)
    assert idempotency_key in stripe_upstream.replies
    assert await spent(admin_metering, tenant) == {}  # the dead gateway charged nothing

    async with gateway_process(sealed_system) as (url, _):
        retried = await charge(t, url, 3000, mode="slow", idempotency_key=idempotency_key)
        again = await charge(t, url, 3000, mode="slow", idempotency_key=idempotency_key)
        assert retried.id == again.id and retried.amount == 3000
        assert await spent(admin_metering, tenant) == {"USD": 30 * USD}
        assert [e.amount.micros for e in await events(admin_metering, tenant)] == [30 * USD]
        # The first attempt's hold became this charge: 30 + 20 fits the 50 cap exactly.
        await charge(t, url, 2000)
        with pytest.raises(stripe.StripeError) as over:
            await charge(t, url, 1)
        assert over.value.http_status == 402
    assert await spent(admin_metering, tenant) == {"USD": 50 * USD}
