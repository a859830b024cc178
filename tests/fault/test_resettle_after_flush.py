"""A Charge retried (same request_id) after Redis lost its data: the vault rebuilt the key's
windows from billing_events, which already hold the event, so the duplicate must not be counted
again (its settled marker went with the flush)."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from tests.fault.fault_helpers import (
    admin_md,
    authorize,
    charge_request,
    connected,
    day_cap,
    day_used,
    mint,
    own_stores,
    read_ledger,
    service_md,
    services,
    usd_micros,
)


async def test_duplicate_charge_after_a_redis_flush_is_not_counted_twice() -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    with own_stores() as stores, services(stores, "vault", "metering") as procs:
        async with connected(procs) as (vault, metering):
            minted = await mint(vault, tenant, [day_cap(5_000_000)])
            assert day_used(await authorize(vault, minted.secret)) == 0  # loaded
            request = charge_request(f"{tenant}-x", minted.key.key_id, 2_000_000)
            first = await metering.Charge(request, metadata=service_md(), timeout=10)
            assert not first.duplicate
            assert day_used(await authorize(vault, minted.secret)) == 2_000_000
            client = aioredis.Redis.from_url(stores.redis_url)
            try:
                await client.flushall()  # what a Redis restarted empty looks like
            finally:
                await client.aclose()
            rebuilt = day_used(await authorize(vault, minted.secret))  # rebuilt from Postgres
            again = await metering.Charge(request, metadata=service_md(), timeout=10)
            assert again.duplicate
            await asyncio.sleep(0)
            after_retry = day_used(await authorize(vault, minted.secret))
            ledger = await read_ledger(stores.database_url, tenant)
            print(
                f"\nFAULT flush-then-retry: ledger_micros={ledger.total_micros}"
                f" rebuilt_used={rebuilt} used_after_duplicate={after_retry}"
            )
            assert rebuilt == 2_000_000
            assert after_retry == ledger.total_micros == 2_000_000, (
                f"the duplicate was settled again after the rebuild: window {after_retry}"
            )


async def test_duplicate_charge_after_a_redis_flush_does_not_throttle_the_tenant() -> None:
    """The same race for the tenant's daily counter: rebuilt from daily_spend (which holds the
    event) and then settled again by the retry, 2.00 would count as 4.00 and cross a 3.00
    threshold, throttling a tenant that spent 2.00."""
    tenant = "t-" + uuid.uuid4().hex[:12]
    with own_stores() as stores, services(stores, "vault", "metering") as procs:
        async with connected(procs) as (vault, metering):
            await metering.SetTenantBudget(
                metering_pb2.SetTenantBudgetRequest(
                    tenant_id=tenant, daily_threshold=usd_micros(3_000_000)
                ),
                metadata=admin_md(),
                timeout=10,
            )
            minted = await mint(vault, tenant)
            request = charge_request(f"{tenant}-x", minted.key.key_id, 2_000_000)
            first = await metering.Charge(request, metadata=service_md(), timeout=10)
            assert first.tenant.spend_today.micros == 2_000_000
            client = aioredis.Redis.from_url(stores.redis_url)
            try:
                await client.flushall()
            finally:
                await client.aclose()
            assert (await authorize(vault, minted.secret)).decision == vault_pb2.DECISION_ALLOW
            again = await metering.Charge(request, metadata=service_md(), timeout=10)
            assert again.duplicate
            print(
                f"\nFAULT flush-then-retry, tenant: spend_today={again.tenant.spend_today.micros}"
            )
            assert again.tenant.spend_today.micros == 2_000_000
            assert not again.tenant.throttled
            after = await authorize(vault, minted.secret)
            assert after.decision == vault_pb2.DECISION_ALLOW, after.reason
