"""BatchCharge over real gRPC, Redis and Postgres: many charges in one message, each recorded
and settled as Charge records it, all or nothing."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from keyleash.metering.v1 import metering_pb2
from tests.conftest import bearer
from tests.integration.test_metering import (
    ALLOW,
    ROLLING,
    admin,
    authorize,
    bad_fields,
    cap,
    error_info,
    mint,
    service,
    spend_quota_used,
    usd,
)


def charge_request(key_id: str, amount: str, **fields: Any) -> metering_pb2.ChargeRequest:
    return metering_pb2.ChargeRequest(
        request_id=fields.pop("request_id", "bch-" + uuid.uuid4().hex),
        key_id=key_id,
        amount=usd(amount),
        **fields,
    )


async def batch(metering: Any, *requests: metering_pb2.ChargeRequest) -> Any:
    return await metering.BatchCharge(
        metering_pb2.BatchChargeRequest(requests=list(requests)), metadata=bearer(service())
    )


async def test_each_charge_of_a_batch_settles_its_own_hold_once(
    vault: Any, metering: Any, tenant: str
) -> None:
    keys = [await mint(vault, admin(), tenant, spend_caps=[cap("10.00", ROLLING)]) for _ in "ab"]
    holds = [await authorize(vault, k.secret, "1.00") for k in keys]
    assert all(h.decision == ALLOW for h in holds)
    requests = [
        charge_request(k.key.key_id, amount, reservation_id=h.reservation_id)
        for k, h, amount in zip(keys, holds, ("0.40", "0.70"), strict=True)
    ]
    first = await batch(metering, *requests)
    assert [r.event.request_id for r in first.responses] == [r.request_id for r in requests]
    assert [r.duplicate for r in first.responses] == [False, False]
    used = [await spend_quota_used(vault, k.secret, "spend/rolling_24h") for k in keys]
    assert used == [400_000, 700_000]
    again = await batch(metering, *requests)  # a retry of the whole batch: counted once
    assert [r.duplicate for r in again.responses] == [True, True]
    assert [r.event.event_id for r in again.responses] == [
        r.event.event_id for r in first.responses
    ]
    assert [await spend_quota_used(vault, k.secret, "spend/rolling_24h") for k in keys] == used


async def test_a_malformed_charge_fails_the_batch_naming_its_index(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    good = charge_request(minted.key.key_id, "0.10")
    bad = charge_request(minted.key.key_id, "0.10")
    bad.ClearField("amount")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batch(metering, good, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == ["requests[1].amount"]
    assert error_info(caught.value).domain == "metering.keyleash"
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await batch(metering, good, good)
    assert twice.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await batch(metering)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    spend = await metering.GetSpend(
        metering_pb2.GetSpendRequest(tenant_id=tenant), metadata=bearer(admin())
    )
    assert spend.event_count == 0  # nothing of a refused batch was recorded


async def test_a_hold_of_another_key_fails_the_whole_batch(
    vault: Any, metering: Any, tenant: str
) -> None:
    mine, other = [await mint(vault, admin(), tenant) for _ in "ab"]
    own = await authorize(vault, mine.secret, "1.00")
    held = await authorize(vault, other.secret, "1.00")
    requests = [
        charge_request(mine.key.key_id, "0.10", reservation_id=own.reservation_id),
        charge_request(mine.key.key_id, "0.10", reservation_id=held.reservation_id),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batch(metering, *requests)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "RESERVATION_NOT_FOUND"
    spend = await metering.GetSpend(
        metering_pb2.GetSpendRequest(tenant_id=tenant), metadata=bearer(admin())
    )
    assert spend.event_count == 0
