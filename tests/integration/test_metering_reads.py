"""Metering over real gRPC: LLM usage pricing, streamed usage, spend and billing-event reads,
Postgres down. (Charges, holds and tenant budgets: test_metering.py, whose helpers these use.)"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from tests.conftest import bearer

from .test_metering import admin, charge, error_info, mint, service


async def test_record_usage_prices_exactly_and_rounds_up(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    request = metering_pb2.RecordUsageRequest(
        request_id="use-" + tenant, key_id=minted.key.key_id, model="gpt-4o",
        input_tokens=1234, output_tokens=567, cached_input_tokens=89, agent_run_id="run-1",
    )  # fmt: skip
    reply = await metering.RecordUsage(request, metadata=bearer(service()))
    # (1234 * 2.50 + 567 * 10.00 + 89 * 1.25) USD per million = 8866.25 micros, rounded up.
    assert (reply.event.amount.currency_code, reply.event.amount.micros) == ("USD", 8867)
    assert reply.event.kind == metering_pb2.BillingEvent.KIND_USAGE
    assert reply.event.cost_source == "prices:2026-12-01"
    assert (reply.event.model, reply.event.input_tokens, reply.event.output_tokens) == (
        "gpt-4o",
        1234,
        567,
    )
    again = await metering.RecordUsage(request, metadata=bearer(service()))
    assert again.duplicate and again.event.event_id == reply.event.event_id


async def test_a_tenants_own_price_overrides_the_table(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    price = metering_pb2.SetTenantModelPriceRequest(
        tenant_id=tenant, model="gpt-4o", input_per_million_micros=1_000_000,
        output_per_million_micros=2_000_000, cached_input_per_million_micros=0,
    )  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metering.SetTenantModelPrice(price, metadata=bearer(service()))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    in_force = await metering.SetTenantModelPrice(price, metadata=bearer(admin()))
    assert (in_force.source, in_force.tenant_id) == (f"tenant:{tenant}", tenant)
    read = metering_pb2.GetTenantModelPriceRequest(tenant_id=tenant, model="gpt-4o")
    assert await metering.GetTenantModelPrice(read, metadata=bearer(service())) == in_force
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metering.GetTenantModelPrice(read, metadata=bearer(minted.secret))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def usage(request_id: str) -> Any:
        request = metering_pb2.RecordUsageRequest(
            request_id=request_id, key_id=minted.key.key_id, model="gpt-4o",
            input_tokens=1000, output_tokens=500, cached_input_tokens=7,
        )  # fmt: skip
        return (await metering.RecordUsage(request, metadata=bearer(service()))).event

    own = await usage(f"own-{tenant}")
    assert (own.amount.micros, own.cost_source) == (2000, f"tenant:{tenant}")  # 1000*1 + 500*2
    cleared = await metering.SetTenantModelPrice(
        metering_pb2.SetTenantModelPriceRequest(tenant_id=tenant, model="gpt-4o", clear=True),
        metadata=bearer(admin()),
    )
    assert cleared.source == "prices:2026-12-01" and not cleared.tenant_id
    assert await metering.GetTenantModelPrice(read, metadata=bearer(admin())) == cleared
    table = await usage(f"table-{tenant}")
    assert table.cost_source == "prices:2026-12-01"
    assert table.amount.micros == -(
        -(1000 * 2_500_000 + 500 * 10_000_000 + 7 * 1_250_000) // 1_000_000
    )


async def test_unknown_model_is_failed_precondition(vault: Any, metering: Any, tenant: str) -> None:
    minted = await mint(vault, admin(), tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metering.RecordUsage(
            metering_pb2.RecordUsageRequest(
                request_id="use-" + tenant, key_id=minted.key.key_id, model="gpt-9000",
                input_tokens=10,
            ),
            metadata=bearer(service()),
        )  # fmt: skip
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert (info.reason, info.metadata["model"]) == ("UNKNOWN_MODEL", "gpt-9000")


async def test_stream_usage_acks_commits_and_reports_resends_as_duplicates(
    vault: Any, metering: Any, tenant: str, db: Any
) -> None:
    minted = await mint(vault, admin(), tenant)
    requests = [
        metering_pb2.RecordUsageRequest(
            request_id=f"{tenant}-s{i}", key_id=minted.key.key_id, model="claude-haiku-4",
            input_tokens=1000 + i, output_tokens=100,
        )
        for i in range(300)
    ]  # fmt: skip

    async def send(batch: list[Any]) -> list[Any]:
        return [ack async for ack in metering.StreamUsage(iter(batch), metadata=bearer(service()))]

    first = await send(requests[:200])
    assert sum(a.accepted for a in first) == 200 and sum(a.duplicates for a in first) == 0
    assert sorted(r for a in first for r in a.request_ids) == sorted(
        r.request_id for r in requests[:200]
    )
    resent = await send(requests)  # a client that reconnects and resends everything
    assert sum(a.accepted for a in resent) == 100 and sum(a.duplicates for a in resent) == 200
    assert (
        await db.fetchval("SELECT COUNT(*) FROM billing_events WHERE tenant_id = $1", tenant) == 300
    )


# ---- reading ---------------------------------------------------------------------------------


async def test_get_spend_by_key_subtree_agent_and_run(
    vault: Any, metering: Any, tenant: str
) -> None:
    parent = await mint(vault, admin(), tenant)
    child = await mint(vault, parent.secret)
    await charge(metering, parent.key.key_id, "1.00", agent_run_id="run-a")
    await charge(metering, child.key.key_id, "0.50", agent_run_id="run-b")
    await charge(metering, child.key.key_id, "2.00", agent_run_id="run-b")
    eur = metering_pb2.ChargeRequest(
        request_id="eur-" + tenant, key_id=child.key.key_id,
        amount=money_pb2.Money(currency_code="EUR", micros=700_000),
    )  # fmt: skip
    await metering.Charge(eur, metadata=bearer(service()))

    async def spend(token: str, **subject: str) -> list[tuple[str, int]]:
        request = metering_pb2.GetSpendRequest()
        for name, value in subject.items():
            setattr(request, name, value)
        reply = await metering.GetSpend(request, metadata=bearer(token))
        return [(t.currency_code, t.micros) for t in reply.totals]

    assert await spend(service(), key_name=parent.key.name) == [
        ("EUR", 700_000),
        ("USD", 3_500_000),
    ]
    assert await spend(parent.secret, key_name=child.key.name) == [
        ("EUR", 700_000), ("USD", 2_500_000)
    ]  # fmt: skip
    assert await spend(admin(), agent_run_id="run-b", subject_tenant_id=tenant) == [
        ("USD", 2_500_000)
    ]
    assert await spend(admin(), agent_id=parent.key.agent_id, subject_tenant_id=tenant) == [
        ("USD", 1_000_000)
    ]
    assert await spend(child.secret, agent_run_id="run-a") == []  # outside its subtree
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await spend(child.secret, key_name=parent.key.name)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    past = timestamp_pb2.Timestamp(seconds=1_000_000)
    reply = await metering.GetSpend(
        metering_pb2.GetSpendRequest(tenant_id=tenant, end_time=past), metadata=bearer(admin())
    )
    assert reply.event_count == 0 and not reply.totals


async def test_list_pages_and_export_streams_every_event_in_order(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    for i in range(25):
        await charge(metering, minted.key.key_id, f"0.0{i % 10}", agent_run_id=f"r{i % 2}")
    flt = metering_pb2.BillingEventFilter(tenant_id=tenant)
    seen: list[Any] = []
    token = ""
    pages = 0
    while True:
        page = await metering.ListBillingEvents(
            metering_pb2.ListBillingEventsRequest(filter=flt, page_size=10, page_token=token),
            metadata=bearer(service()),
        )
        seen.extend(page.events)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3 and len({e.event_id for e in seen}) == 25
    order = [(e.occur_time.ToMicroseconds(), e.event_id) for e in seen]
    assert order == sorted(order)
    exported = [
        e async for e in metering.ExportBillingEvents(
            metering_pb2.ExportBillingEventsRequest(filter=flt), metadata=bearer(admin())
        )
    ]  # fmt: skip
    assert [e.event_id for e in exported] == [e.event_id for e in seen]
    run = metering_pb2.BillingEventFilter(tenant_id=tenant, agent_run_id="r1")
    only = await metering.ListBillingEvents(
        metering_pb2.ListBillingEventsRequest(filter=run), metadata=bearer(admin())
    )
    assert len(only.events) == 12 and not only.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metering.ListBillingEvents(
            metering_pb2.ListBillingEventsRequest(filter=run, page_token=token or "garbage"),
            metadata=bearer(admin()),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metering.ListBillingEvents(
            metering_pb2.ListBillingEventsRequest(filter=flt), metadata=bearer(minted.secret)
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_newest_first_pages_backwards_and_binds_its_tokens(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    for i in range(7):
        await charge(metering, minted.key.key_id, f"0.0{i + 1}")
    flt = metering_pb2.BillingEventFilter(tenant_id=tenant)

    async def every(order_by: str) -> list[Any]:
        seen: list[Any] = []
        token = ""
        while True:
            page = await metering.ListBillingEvents(
                metering_pb2.ListBillingEventsRequest(
                    filter=flt, page_size=3, page_token=token, order_by=order_by
                ),
                metadata=bearer(admin()),
            )
            seen.extend(page.events)
            token = page.next_page_token
            if not token:
                return seen

    oldest, newest = await every(""), await every("occur_time desc")
    assert len(oldest) == 7 and [e.event_id for e in newest] == [e.event_id for e in oldest][::-1]
    assert [e.amount.micros for e in newest] == [70_000, 60_000, 50_000, 40_000, 30_000, 20_000,
                                                 10_000]  # fmt: skip
    assert [e.event_id for e in await every("OCCUR_TIME  asc")] == [e.event_id for e in oldest]

    first = await metering.ListBillingEvents(
        metering_pb2.ListBillingEventsRequest(filter=flt, page_size=3, order_by="occur_time desc"),
        metadata=bearer(admin()),
    )
    for bad in (
        metering_pb2.ListBillingEventsRequest(filter=flt, page_token=first.next_page_token),
        metering_pb2.ListBillingEventsRequest(filter=flt, order_by="amount desc"),
        metering_pb2.ListBillingEventsRequest(filter=flt, order_by="occur_time sideways"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await metering.ListBillingEvents(bad, metadata=bearer(admin()))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad


async def _until_ok(call: Any, attempts: int = 50) -> Any:
    for _ in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("the system did not recover")


async def test_postgres_down_is_unavailable_and_nothing_is_acknowledged(
    system: Any, vault: Any, metering: Any, tenant: str
) -> None:
    server = system.stores.postgres_server
    if server is None:
        pytest.skip("the suite does not own Postgres (KEYLEASH_TEST_DATABASE_URL is set)")
    minted = await mint(vault, admin(), tenant)
    await charge(metering, minted.key.key_id, "0.01")  # key and tenant cached
    request_id = "down-" + tenant
    # A clean stop: the suite's Postgres runs with synchronous_commit off, so SIGKILL could
    # lose the committed charge above, which is not what this test is about.
    server.stop()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await charge(metering, minted.key.key_id, "1.00", request_id=request_id)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(caught.value).reason == "STORE_UNAVAILABLE"
    finally:
        server.restart()
    retried = await _until_ok(
        lambda: charge(metering, minted.key.key_id, "1.00", request_id=request_id)
    )
    assert not retried.duplicate  # the failed attempt had recorded nothing
    # Leave both services healthy for the tests that follow.
    await _until_ok(lambda: mint(vault, admin(), tenant))
    spend = await _until_ok(
        lambda: metering.GetSpend(
            metering_pb2.GetSpendRequest(tenant_id=tenant), metadata=bearer(admin())
        )
    )
    assert spend.event_count == 2 and spend.totals[0].micros == 1_010_000
