"""Multi-currency caps over real gRPC, Redis and Postgres: holds and charges in another currency
than a cap are converted at the rate in force (rounded up) and counted in the cap's currency.

The FX table is global: these tests only set pairs no other test uses (NOK, SEK into USD) and
read the shipped EUR/USD = 1.08; BRL/USD is never set, so it stays unknown.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer
from tests.integration.test_metering import admin, error_info, mint, service

LIFETIME = vault_pb2.SpendCap.WINDOW_LIFETIME
DENY = vault_pb2.DECISION_DENY
ALLOW = vault_pb2.DECISION_ALLOW


def money(currency: str, micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, micros=micros)


def usd_cap(micros: int) -> vault_pb2.SpendCap:
    return vault_pb2.SpendCap(limit=money("USD", micros), window=LIFETIME)


async def authorize(vault: Any, secret: str, cost: money_pb2.Money) -> Any:
    request = vault_pb2.AuthorizeRequest(key=secret, scope="api.call", estimated_cost=cost)
    return await vault.Authorize(request, metadata=bearer(secret))


async def charge(
    metering: Any, key_id: str, amount: money_pb2.Money, reservation_id: str = ""
) -> Any:
    request = metering_pb2.ChargeRequest(
        request_id="fx-" + uuid.uuid4().hex,
        key_id=key_id,
        amount=amount,
        reservation_id=reservation_id,
    )
    return await metering.Charge(request, metadata=bearer(service()))


async def set_rate(metering: Any, pair: str, rate: str) -> Any:
    base, quote = pair.split("/")
    request = metering_pb2.SetExchangeRateRequest(
        base_currency_code=base, quote_currency_code=quote, rate=rate
    )
    return await metering.SetExchangeRate(request, metadata=bearer(admin()))


def spend_quota(reply: Any) -> Any:
    (quota,) = [q for q in reply.quotas if q.unit == "USD"]
    return quota


async def test_eur_charges_stop_at_exactly_the_converted_usd_cap(
    vault: Any, metering: Any, tenant: str
) -> None:
    # 5 x 1 EUR = 5.40 USD at the shipped 1.08, plus 2 micros: room for one more 1-micro-EUR
    # call (1.08 micros, held as 2: rounded up), and then none.
    minted = await mint(vault, admin(), tenant, spend_caps=[usd_cap(5_400_002)])
    secret, key_id = minted.secret, minted.key.key_id
    for _ in range(5):
        reply = await authorize(vault, secret, money("EUR", 1_000_000))
        assert reply.decision == ALLOW
        charged = await charge(metering, key_id, money("EUR", 1_000_000), reply.reservation_id)
        (converted,) = charged.event.converted_amounts
        assert (converted.amount.currency_code, converted.amount.micros) == ("USD", 1_080_000)
        assert converted.rate == "1.08"
    assert spend_quota(reply).used == 5_400_000
    last = await authorize(vault, secret, money("EUR", 1))
    assert last.decision == ALLOW
    assert spend_quota(last).used == 5_400_002  # 1.08 micros held as 2: never rounded down
    over = await authorize(vault, secret, money("EUR", 1))
    assert over.decision == DENY
    assert over.reason == vault_pb2.DENY_REASON_SPEND_CAP_EXCEEDED
    assert (spend_quota(over).limit, spend_quota(over).used) == (5_400_002, 5_400_002)


async def test_a_hold_is_rounded_up_into_the_cap_currency(vault: Any, tenant: str) -> None:
    # 3 micros of EUR are 3.24 micros of USD: a 3-micro cap cannot hold them, a 4-micro one can.
    tight = await mint(vault, admin(), tenant, spend_caps=[usd_cap(3)])
    assert (await authorize(vault, tight.secret, money("EUR", 3))).decision == DENY
    roomy = await mint(vault, admin(), tenant, spend_caps=[usd_cap(4)])
    reply = await authorize(vault, roomy.secret, money("EUR", 3))
    assert reply.decision == ALLOW
    assert spend_quota(reply).used == 4


async def test_an_unknown_pair_is_denied_with_its_own_reason(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant, spend_caps=[usd_cap(10**9)])
    reply = await authorize(vault, minted.secret, money("BRL", 1_000_000))
    assert reply.decision == DENY
    assert reply.reason == vault_pb2.DENY_REASON_FX_RATE_UNKNOWN
    assert "BRL/USD" in reply.message
    # A charge in that currency is refused (nothing recorded), never counted nowhere.
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await charge(metering, minted.key.key_id, money("BRL", 1_000_000))
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(failure.value).reason == "FX_RATE_UNKNOWN"


async def test_a_rate_change_between_hold_and_charge_settles_at_the_charge_rate(
    vault: Any, metering: Any, tenant: str
) -> None:
    first = await set_rate(metering, "NOK/USD", "0.1")
    minted = await mint(vault, admin(), tenant, spend_caps=[usd_cap(100_000_000)])
    held = await authorize(vault, minted.secret, money("NOK", 100_000_000))
    assert spend_quota(held).used == 10_000_000  # 100 NOK held as 10 USD at 0.1
    second = await set_rate(metering, "NOK/USD", "0.2")
    assert second.fx_table_version != first.fx_table_version
    charged = await charge(
        metering, minted.key.key_id, money("NOK", 100_000_000), held.reservation_id
    )
    (converted,) = charged.event.converted_amounts
    assert (converted.amount.micros, converted.rate) == (20_000_000, "0.2")
    assert converted.fx_table_version == second.fx_table_version
    # The 10 USD hold was released and 20 USD counted: the cap now shows 20 USD used.
    probe = await authorize(vault, minted.secret, money("USD", 1))
    assert spend_quota(probe).used == 20_000_001


async def test_billing_events_list_and_export_show_both_amounts(
    vault: Any, metering: Any, tenant: str
) -> None:
    await set_rate(metering, "SEK/USD", "0.095")
    minted = await mint(vault, admin(), tenant, spend_caps=[usd_cap(100_000_000)])
    await charge(metering, minted.key.key_id, money("SEK", 10_000_001))
    event_filter = metering_pb2.BillingEventFilter(tenant_id=tenant)
    listed = await metering.ListBillingEvents(
        metering_pb2.ListBillingEventsRequest(filter=event_filter), metadata=bearer(admin())
    )
    exported = [
        e
        async for e in metering.ExportBillingEvents(
            metering_pb2.ExportBillingEventsRequest(filter=event_filter), metadata=bearer(admin())
        )
    ]
    for event in (listed.events[0], exported[0]):
        assert (event.amount.currency_code, event.amount.micros) == ("SEK", 10_000_001)
        (converted,) = event.converted_amounts
        # 10000001 x 0.095 = 950000.095 micros: counted as 950001.
        assert (converted.amount.currency_code, converted.amount.micros) == ("USD", 950_001)
        assert converted.rate == "0.095"
        assert converted.fx_table_version.startswith("2026-12-01+r")


async def test_set_exchange_rate_validates_and_is_admin_only(metering: Any) -> None:
    for pair, rate in [("EUR/EUR", "1"), ("EUR/USD", "-1"), ("EUR/USD", "1.0000000001"),
                       ("XXQ/USD", "1"), ("EUR/USD", "abc")]:  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await set_rate(metering, pair, rate)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (pair, rate)
        assert error_info(failure.value).reason == "INVALID_ARGUMENT"
    request = metering_pb2.SetExchangeRateRequest(
        base_currency_code="SEK", quote_currency_code="USD", rate="1"
    )
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await metering.SetExchangeRate(request, metadata=bearer(service()))
    assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await metering.ListExchangeRates(
        metering_pb2.ListExchangeRatesRequest(), metadata=bearer(service())
    )
    pairs = {(r.base_currency_code, r.quote_currency_code): r for r in listed.rates}
    assert pairs[("EUR", "USD")].rate == "1.08"
    assert pairs[("EUR", "USD")].source == "shipped"
    assert len(pairs) >= 30  # every pair of USD, EUR, GBP, JPY, CHF, CAD


async def test_windows_rebuilt_after_redis_lost_them_count_converted_events(
    vault: Any, metering: Any, tenant: str, redis_client: Any
) -> None:
    rolling = vault_pb2.SpendCap(
        limit=money("USD", 5_400_000), window=vault_pb2.SpendCap.WINDOW_ROLLING_24H
    )
    minted = await mint(vault, admin(), tenant, spend_caps=[usd_cap(5_400_000), rolling])
    for _ in range(4):
        reply = await authorize(vault, minted.secret, money("EUR", 1_000_000))
        await charge(metering, minted.key.key_id, money("EUR", 1_000_000), reply.reservation_id)
    lost = [name async for name in redis_client.scan_iter(match=f"*{{{tenant}}}*")]
    assert lost
    await redis_client.delete(*lost)
    # Rebuilt from billing_events: 4.32 USD counted (converted), so one more euro fits exactly.
    again = await authorize(vault, minted.secret, money("EUR", 1_000_000))
    assert again.decision == ALLOW
    assert [q.used for q in again.quotas if q.unit == "USD"] == [5_400_000, 5_400_000]
    assert (await authorize(vault, minted.secret, money("EUR", 1))).decision == DENY


async def test_concurrent_eur_holds_fill_a_usd_cap_exactly(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin(), tenant, spend_caps=[usd_cap(5_400_000)])
    replies = await asyncio.gather(
        *(authorize(vault, minted.secret, money("EUR", 1_000_000)) for _ in range(30))
    )
    assert sum(r.decision == ALLOW for r in replies) == 5  # 5 x 1.08 USD = the cap, exactly
    assert {r.reason for r in replies if r.decision == DENY} == {
        vault_pb2.DENY_REASON_SPEND_CAP_EXCEEDED
    }
