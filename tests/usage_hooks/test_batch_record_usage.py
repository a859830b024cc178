"""BatchRecordUsage, the RPC the receiver records deliveries with: who may call it, what is
refused (as a whole: nothing of a refused batch is recorded), and idempotency per item."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from google.protobuf import field_mask_pb2

from keyleash.client import InvalidArgument, MeteringClient, PermissionDenied, VaultClient
from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_core.redis import keyspace
from keyleash_core.windows import day_period
from tests.conftest import SERVICE_TOKEN, System
from tests.usage_hooks.conftest import cost_micros


@pytest.fixture(scope="module")
async def service_metering(system: System) -> AsyncIterator[MeteringClient]:
    async with MeteringClient(system.metering_address, token=SERVICE_TOKEN) as client:
        yield client


def _request(key_id: str, i: int) -> metering_pb2.RecordUsageRequest:
    return metering_pb2.RecordUsageRequest(
        request_id=f"batch-{key_id}-{i}", key_id=key_id, model="gpt-4o",
        input_tokens=10 * i, output_tokens=i,
    )  # fmt: skip


async def test_a_batch_is_recorded_once_and_priced_per_item(
    service_metering: MeteringClient, admin_vault: VaultClient, tenant: str
) -> None:
    minted = await admin_vault.mint_key(tenant_id=tenant, agent_id="a")
    requests = [_request(minted.key.key_id, i) for i in range(1, 4)]
    first = await service_metering.batch_record_usage(tenant, requests)
    again = await service_metering.batch_record_usage(tenant, requests)
    assert (first.accepted, first.duplicates, again.accepted, again.duplicates) == (3, 0, 0, 3)
    assert [r.event.amount.micros for r in first.responses] == [
        cost_micros(10 * i, i, 0) for i in range(1, 4)
    ]
    assert first.tenant.tenant_id == tenant and not first.responses[0].HasField("tenant")


async def test_refused_batches_record_nothing(
    service_metering: MeteringClient,
    admin_vault: VaultClient,
    tenant: str,
    db: asyncpg.Connection,
) -> None:
    mine = await admin_vault.mint_key(tenant_id=tenant, agent_id="a")
    theirs = await admin_vault.mint_key(tenant_id="x" + tenant, agent_id="b")
    key = mine.key.key_id
    with pytest.raises(PermissionDenied):
        await service_metering.batch_record_usage(
            tenant, [_request(key, 1), _request(theirs.key.key_id, 2)]
        )
    for requests in ([], [_request(key, i) for i in range(1001)], [_request(key, 1)] * 2):
        with pytest.raises(InvalidArgument):
            await service_metering.batch_record_usage(tenant, requests)
    with pytest.raises(PermissionDenied):
        await service_metering.batch_record_usage(
            tenant,
            [_request(key, 1)],
            token=mine.secret,  # a key holder may not batch
        )
    assert (
        await db.fetchval("SELECT count(*) FROM billing_events WHERE tenant_id = $1", tenant) == 0
    )


async def test_the_basic_view_answers_ids_kinds_and_amounts_only(
    service_metering: MeteringClient, admin_vault: VaultClient, tenant: str
) -> None:
    minted = await admin_vault.mint_key(tenant_id=tenant, agent_id="a")
    requests = [_request(minted.key.key_id, i) for i in range(1, 3)]
    basic = await service_metering.batch_record_usage(
        tenant, requests, view=metering_pb2.BILLING_EVENT_VIEW_BASIC
    )
    full = await service_metering.batch_record_usage(tenant, requests)  # unset: FULL
    assert [r.duplicate for r in full.responses] == [True, True]
    for brief, whole in zip(basic.responses, full.responses, strict=True):
        assert brief.event.event_id == whole.event.event_id != ""
        kept = metering_pb2.BillingEvent(
            event_id=whole.event.event_id, request_id=whole.event.request_id,
            kind=metering_pb2.BillingEvent.KIND_USAGE, amount=whole.event.amount,
        )  # fmt: skip
        assert brief.event == kept
        assert whole.event.model == "gpt-4o" and whole.event.HasField("record_time")


def _daily_cap(micros: int) -> vault_pb2.Policy:
    limit = money_pb2.Money(currency_code="USD", micros=micros)
    day = vault_pb2.SpendCap.WINDOW_CALENDAR_DAY
    return vault_pb2.Policy(spend_caps=[vault_pb2.SpendCap(limit=limit, window=day)])


async def test_a_batch_settled_against_a_changed_policy_still_counts_every_event(
    service_metering: MeteringClient,
    admin_vault: VaultClient,
    tenant: str,
    redis_client: aioredis.Redis,
) -> None:
    # The whole batch is settled in one pipeline; an event settle.lua refuses (the key's
    # policy changed since Metering read it) is settled again from the key as it is now.
    minted = await admin_vault.mint_key(tenant_id=tenant, agent_id="a", policy=_daily_cap(10**9))
    key_id = minted.key.key_id
    first = await service_metering.batch_record_usage(tenant, [_request(key_id, i) for i in (1, 2)])
    await admin_vault.update_key_policy(
        name=minted.key.name,
        policy=_daily_cap(2 * 10**9),
        update_mask=field_mask_pb2.FieldMask(paths=["spend_caps"]),
    )
    later = [_request(key_id, i) for i in (3, 4, 5)]
    second = await service_metering.batch_record_usage(tenant, later)
    charged = sum(r.event.amount.micros for r in [*first.responses, *second.responses])
    day, _start, _end = day_period(int(time.time() * 1000))
    counter = keyspace.period_spend(tenant, key_id, "USD", day)
    assert charged > 0 and int(await redis_client.get(counter) or 0) == charged
