"""Metering over real gRPC, real Redis and real Postgres."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer

ALLOW, DENY = vault_pb2.DECISION_ALLOW, vault_pb2.DECISION_DENY
DAY, ROLLING = vault_pb2.SpendCap.WINDOW_CALENDAR_DAY, vault_pb2.SpendCap.WINDOW_ROLLING_24H
LIFETIME = vault_pb2.SpendCap.WINDOW_LIFETIME


# ---- helpers (tests/conftest.py puts the tokens in the environment) ----------------------------


def admin() -> str:
    return os.environ["KEYLEASH_TEST_ADMIN_TOKEN"]


def service() -> str:
    return os.environ["KEYLEASH_TEST_SERVICE_TOKEN"]


def usd(amount: str) -> money_pb2.Money:
    sign = -1 if amount.startswith("-") else 1
    units, _, frac = amount.lstrip("-").partition(".")
    micros = int(units) * 1_000_000 + int((frac + "000000")[:6])
    return money_pb2.Money(currency_code="USD", micros=sign * micros)


def cap(amount: str, window: Any = DAY) -> vault_pb2.SpendCap:
    return vault_pb2.SpendCap(limit=usd(amount), window=window)


async def mint(vault: Any, token: str, tenant: str = "", **policy: Any) -> Any:
    return await vault.MintKey(
        vault_pb2.MintKeyRequest(
            tenant_id=tenant,
            agent_id="agent-" + uuid.uuid4().hex[:6],
            label="metering-test",
            scopes=["api.call"],
            policy=vault_pb2.Policy(**policy),
        ),
        metadata=bearer(token),
    )


async def authorize(vault: Any, secret: str, cost: str | None = None) -> Any:
    request = vault_pb2.AuthorizeRequest(key=secret, scope="api.call")
    if cost is not None:
        request.estimated_cost.CopyFrom(usd(cost))
    return await vault.Authorize(request, metadata=bearer(secret))


async def charge(
    metering: Any, key_id: str, amount: str, *, token: str | None = None, **fields: Any
) -> Any:
    request = metering_pb2.ChargeRequest(
        request_id=fields.pop("request_id", "ch-" + uuid.uuid4().hex),
        key_id=key_id,
        amount=usd(amount),
        **fields,
    )
    return await metering.Charge(request, metadata=bearer(token or service()))


def status_details(error: grpc.aio.AioRpcError) -> list[Any]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return list(status_pb2.Status.FromString(value).details)
    raise AssertionError("no rich status")


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for detail in status_details(error):
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError("no ErrorInfo")


def bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    for detail in status_details(error):
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return [v.field for v in bad.field_violations]
    return []


async def spend_quota_used(vault: Any, secret: str, quota: str) -> int:
    reply = await authorize(vault, secret)
    assert reply.decision == ALLOW
    return int(next(q.used for q in reply.quotas if q.quota == quota))


# ---- Charge ----------------------------------------------------------------------------------


async def test_2000_charges_from_64_callers_each_sent_twice_are_recorded_once(
    vault: Any, metering: Any, tenant: str, db: Any
) -> None:
    keys = [await mint(vault, admin(), tenant) for _ in range(4)]
    work = list(range(2000))
    duplicates = 0

    async def caller() -> None:
        nonlocal duplicates
        while work:
            i = work.pop()
            request = metering_pb2.ChargeRequest(
                request_id=f"{tenant}-{i}",
                key_id=keys[i % 4].key.key_id,
                amount=usd(f"0.{i % 1000:03d}{i % 7}"),
                vendor="stripe",
            )
            replies = await asyncio.gather(
                *(metering.Charge(request, metadata=bearer(service())) for _ in range(2))
            )
            assert replies[0].event.event_id == replies[1].event.event_id
            assert sorted(r.duplicate for r in replies) == [False, True]
            duplicates += 1

    await asyncio.gather(*(caller() for _ in range(64)))
    assert duplicates == 2000
    rows, total = await db.fetchrow(
        "SELECT COUNT(*), SUM(amount_micros) FROM billing_events WHERE tenant_id = $1", tenant
    )
    assert rows == 2000
    assert (
        await db.fetchval(
            "SELECT COUNT(*) FROM billing_requests WHERE request_id LIKE $1", tenant + "-%"
        )
        == 2000
    )
    spend = await metering.GetSpend(
        metering_pb2.GetSpendRequest(tenant_id=tenant), metadata=bearer(service())
    )
    assert [(t.currency_code, t.micros) for t in spend.totals] == [("USD", total)]
    assert spend.event_count == 2000
    daily = await db.fetchrow(
        "SELECT SUM(amount_micros), SUM(event_count) FROM daily_spend WHERE tenant_id = $1", tenant
    )
    assert (daily[0], daily[1]) == (total, 2000)


async def test_group_commit_needs_well_under_one_transaction_per_charge(
    vault: Any, metering: Any, tenant: str, db: Any
) -> None:
    minted = await mint(vault, admin(), tenant)
    await charge(metering, minted.key.key_id, "0.01")  # warm the key and tenant caches
    count_sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
    # Backends flush their statistics when idle, at the latest after 10 s (PGSTAT_IDLE_INTERVAL):
    # wait that out on both sides so earlier tests' commits do not land in the window.
    await asyncio.sleep(10.5)
    before = await db.fetchval(count_sql)
    xid_before = int(await db.fetchval("SELECT pg_current_xact_id()::text"))
    work = list(range(1280))

    async def caller() -> None:
        while work:
            work.pop()
            await charge(metering, minted.key.key_id, "0.01")

    await asyncio.gather(*(caller() for _ in range(64)))
    # Write transactions are counted exactly and at once by the transaction ids they took.
    xid_after = int(await db.fetchval("SELECT pg_current_xact_id()::text"))
    assert (xid_after - xid_before - 1) / 1280 < 0.4
    await asyncio.sleep(10.5)
    after = await db.fetchval(count_sql)
    # All transactions, reads included: the session's other servers' background readers (alert
    # scanners, approval sweepers) commit in this window too, hence the looser bound; the exact
    # count of write transactions is the assertion above.
    per_charge = (after - before) / 1280
    assert per_charge < 0.6, per_charge


async def test_charge_settles_the_reservation_to_the_actual_amount_exactly_once(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant, spend_caps=[cap("10.00"), cap("10.00", ROLLING)])
    held = await authorize(vault, minted.secret, "1.00")
    assert held.decision == ALLOW and held.reservation_id
    assert await spend_quota_used(vault, minted.secret, "spend/calendar_day") == 1_000_000
    request_id = "settle-" + uuid.uuid4().hex
    first = await charge(
        metering, minted.key.key_id, "0.40", request_id=request_id,
        reservation_id=held.reservation_id, token=minted.secret,
    )  # fmt: skip
    assert not first.duplicate and first.event.kind == metering_pb2.BillingEvent.KIND_CHARGE
    for quota in ("spend/calendar_day", "spend/rolling_24h"):
        assert await spend_quota_used(vault, minted.secret, quota) == 400_000
    again = await charge(
        metering, minted.key.key_id, "0.40", request_id=request_id,
        reservation_id=held.reservation_id, token=minted.secret,
    )  # fmt: skip
    assert again.duplicate and again.event.event_id == first.event.event_id
    for quota in ("spend/calendar_day", "spend/rolling_24h"):
        assert await spend_quota_used(vault, minted.secret, quota) == 400_000


async def test_charge_without_reservation_adds_to_the_chain_windows(
    vault: Any, metering: Any, tenant: str
) -> None:
    parent = await mint(vault, admin(), tenant, spend_caps=[cap("10.00", LIFETIME)])
    child = await mint(vault, parent.secret, spend_caps=[cap("5.00", ROLLING)])
    assert (await authorize(vault, child.secret)).decision == ALLOW  # loads the chain
    await charge(metering, child.key.key_id, "0.25")
    await charge(metering, child.key.key_id, "-0.05")  # a refund
    assert await spend_quota_used(vault, child.secret, "spend/rolling_24h") == 200_000
    assert await spend_quota_used(vault, child.secret, "spend/lifetime") == 200_000


async def test_release_gives_back_the_whole_hold(vault: Any, metering: Any, tenant: str) -> None:
    minted = await mint(vault, admin(), tenant, spend_caps=[cap("1.00")])
    held = await authorize(vault, minted.secret, "1.00")
    assert (await authorize(vault, minted.secret, "0.01")).decision == DENY
    released = await charge(metering, minted.key.key_id, "0", reservation_id=held.reservation_id)
    assert released.event.kind == metering_pb2.BillingEvent.KIND_RELEASE
    assert await spend_quota_used(vault, minted.secret, "spend/calendar_day") == 0


async def test_crossing_the_daily_threshold_throttles_the_tenant_until_lifted(
    vault: Any, metering: Any, tenant: str
) -> None:
    budget = await metering.SetTenantBudget(
        metering_pb2.SetTenantBudgetRequest(tenant_id=tenant, daily_threshold=usd("50.00")),
        metadata=bearer(admin()),
    )
    assert budget.daily_threshold.micros == 50_000_000 and not budget.throttled
    minted = await mint(vault, admin(), tenant)
    assert (await authorize(vault, minted.secret)).decision == ALLOW
    below = await charge(metering, minted.key.key_id, "30.00")
    assert not below.tenant.throttled and below.tenant.spend_today.micros == 30_000_000
    crossing = await charge(metering, minted.key.key_id, "25.00")
    assert crossing.tenant.throttled and crossing.tenant.throttled_until.seconds > 0
    denied = await authorize(vault, minted.secret)
    assert (denied.decision, denied.reason) == (DENY, vault_pb2.DENY_REASON_TENANT_THROTTLED)
    seen = await metering.GetTenant(
        metering_pb2.GetTenantRequest(tenant_id=tenant), metadata=bearer(admin())
    )
    assert seen.throttled and seen.spend_today.micros == 55_000_000
    lifted = await metering.SetTenantBudget(
        metering_pb2.SetTenantBudgetRequest(
            tenant_id=tenant, daily_threshold=usd("50.00"), lift_throttle=True
        ),
        metadata=bearer(admin()),
    )
    assert not lifted.throttled and lifted.spend_today.micros == 55_000_000
    assert (await authorize(vault, minted.secret)).decision == ALLOW
    after = await charge(metering, minted.key.key_id, "1.00")
    assert not after.tenant.throttled  # lifted for the rest of the day


async def test_tenant_budget_is_admin_only(metering: Any, tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metering.GetTenant(
            metering_pb2.GetTenantRequest(tenant_id=tenant), metadata=bearer(service())
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_reused_request_id_with_another_payload_is_already_exists(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    await charge(metering, minted.key.key_id, "1.00", request_id="reuse-" + tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await charge(metering, minted.key.key_id, "2.00", request_id="reuse-" + tenant)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info = error_info(caught.value)
    assert (info.domain, info.reason) == ("metering.keyleash", "REQUEST_ID_REUSED")


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"request_id": ""}, "request_id"),
        ({"key_id": ""}, "key_id"),
        ({"amount": money_pb2.Money(currency_code="usd", micros=1)}, "amount.currency_code"),
        ({"amount": money_pb2.Money(currency_code="USD", micros=10**15 + 1)}, "amount.micros"),
        ({"occur_time": timestamp_pb2.Timestamp(seconds=4_000_000_000)}, "occur_time"),
        ({"amount": None}, "amount"),
    ],
)
async def test_invalid_charges_name_the_field(
    vault: Any, metering: Any, tenant: str, fields: dict[str, Any], bad: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    request = metering_pb2.ChargeRequest(request_id="bad-" + tenant, key_id=minted.key.key_id)
    request.amount.CopyFrom(usd("1.00"))
    for name, value in fields.items():
        if value is None:
            request.ClearField(name)
        elif isinstance(value, str):
            setattr(request, name, value)
        else:
            getattr(request, name).CopyFrom(value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await metering.Charge(request, metadata=bearer(service()))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == [bad]
    assert error_info(caught.value).domain == "metering.keyleash"


async def test_key_holders_charge_only_their_own_key(
    vault: Any, metering: Any, tenant: str
) -> None:
    mine = await mint(vault, admin(), tenant)
    other = await mint(vault, admin(), tenant)
    ok = await charge(metering, mine.key.key_id, "0.10", token=mine.secret)
    assert ok.event.key_id == mine.key.key_id and ok.event.tenant_id == tenant
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await charge(metering, other.key.key_id, "0.10", token=mine.secret)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await charge(metering, "no-such-key", "0.10")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await charge(metering, mine.key.key_id, "0.10", token="nope")
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ---- usage -----------------------------------------------------------------------------------
