"""Alerts end to end on the session's servers (their metering process runs the scanner and the
dispatcher): subscriptions, threshold crossings under concurrency, signatures, retries, key
events with who and why, the Slack format, bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from standardwebhooks import Webhook

from keyleash.client import MeteringClient, VaultClient, agent_run, guard
from keyleash.metering.v1 import alerts_pb2, metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.alerts.receiver import Receiver, bad_fields, deliveries, receiving, subscribe, until
from tests.conftest import ADMIN_TOKEN, System, bearer

ADMIN = bearer(ADMIN_TOKEN)
CALLERS = 200
COST = 10_000  # micros per call: 200 calls spend exactly the cap


def usd(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


@pytest.fixture
async def clients(system: System) -> AsyncIterator[tuple[VaultClient, MeteringClient]]:
    async with (
        VaultClient(system.vault_address, token=ADMIN_TOKEN) as vault,
        MeteringClient(system.metering_address, token=ADMIN_TOKEN) as metering,
    ):
        yield vault, metering


async def mint(vault: VaultClient, tenant: str, **policy: Any) -> vault_pb2.MintKeyResponse:
    return await vault.mint_key(
        tenant_id=tenant,
        agent_id="agent-" + uuid.uuid4().hex[:6],
        label="alerts-test",
        scopes=["api.call"],
        policy=vault_pb2.Policy(**policy),
    )


async def spend_concurrently(vault: VaultClient, metering: MeteringClient, secret: str) -> None:
    steps = uuid.uuid4().hex[:8]  # request ids are unique across tenants: keep ours apart

    async def one_call(index: int) -> None:
        async with guard(
            vault,
            metering,
            key=secret,
            scope="api.call",
            estimated_cost=("USD", COST),
            request_id=f"{steps}-step-{index}",
        ) as call:
            call.actual_cost = ("USD", COST)

    with agent_run("run-alerts"):
        await asyncio.gather(*(one_call(i) for i in range(CALLERS)))


def percents(received: list[Any], event_type: str) -> dict[int, set[str]]:
    """percent -> the webhook ids it arrived with."""
    found: dict[int, set[str]] = {}
    for item in received:
        if item.payload["type"] == event_type:
            found.setdefault(item.payload["data"]["percent"], set()).add(item.webhook_id)
    return found


async def test_crossings_once_each_under_200_concurrent_callers_signed(
    clients: tuple[VaultClient, MeteringClient], metering: Any, receiver: Receiver, tenant: str
) -> None:
    vault, client = clients
    cap = CALLERS * COST
    types = ["key.spend_crossed", "run.spend_crossed", "tenant.spend_crossed", "tenant.throttled"]
    created = await subscribe(metering, ADMIN, tenant, receiver.url, types)
    await metering.SetTenantBudget(
        metering_pb2.SetTenantBudgetRequest(tenant_id=tenant, daily_threshold=usd(cap)),
        metadata=ADMIN,
        timeout=10,
    )
    day = vault_pb2.SpendCap(limit=usd(cap), window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY)
    minted = await mint(vault, tenant, spend_caps=[day], run_spend_cap=usd(cap))
    await spend_concurrently(vault, client, minted.secret)

    expected = {
        "key.spend_crossed": 3,
        "run.spend_crossed": 3,
        "tenant.spend_crossed": 3,
        "tenant.throttled": 1,
    }

    async def all_delivered() -> bool:
        rows = await deliveries(metering, ADMIN, tenant)
        delivered = [r for r in rows if r.state == alerts_pb2.ALERT_DELIVERY_STATE_DELIVERED]
        return len(delivered) == sum(expected.values())

    await until(all_delivered, what="ten deliveries")
    rows = await deliveries(metering, ADMIN, tenant)
    assert {t: sum(r.event_type == t for r in rows) for t in expected} == expected
    for event_type in ("key.spend_crossed", "run.spend_crossed", "tenant.spend_crossed"):
        seen = percents(receiver.received, event_type)
        assert sorted(seen) == [50, 80, 100] and all(len(ids) == 1 for ids in seen.values())
    verifier = Webhook(created.signing_secret)
    for item in receiver.received:
        verifier.verify(item.body, item.headers)  # raises on a bad signature
    key_100 = next(
        r for r in receiver.of_type("key.spend_crossed") if r.payload["data"]["percent"] == 100
    )
    data = key_100.payload["data"]
    assert data["key_id"] == minted.key.key_id and data["spent_micros"] == cap
    assert data["limit_micros"] == cap and data["tenant_id"] == tenant


async def test_receiver_down_is_retried_until_delivered_with_the_same_id(
    clients: tuple[VaultClient, MeteringClient], metering: Any, receiver: Receiver, tenant: str
) -> None:
    vault, _ = clients
    receiver.failures_left = 3
    await subscribe(metering, ADMIN, tenant, receiver.url, ["key.frozen"])
    minted = await mint(vault, tenant)
    await vault.freeze_key(minted.key.name, reason="investigating")

    async def delivered() -> list[alerts_pb2.AlertDelivery]:
        rows = await deliveries(metering, ADMIN, tenant)
        return [r for r in rows if r.state == alerts_pb2.ALERT_DELIVERY_STATE_DELIVERED]

    [row] = await until(delivered, what="delivery after the receiver came back")
    assert row.attempts >= 4 and row.last_status == 204
    assert len(receiver.received) >= 4
    assert {r.webhook_id for r in receiver.received} == {row.event_id}


async def test_freeze_unfreeze_revoke_carry_who_and_why(
    clients: tuple[VaultClient, MeteringClient], metering: Any, receiver: Receiver, tenant: str
) -> None:
    vault, _ = clients
    await subscribe(
        metering, ADMIN, tenant, receiver.url, ["key.frozen", "key.unfrozen", "key.revoked"]
    )
    minted = await mint(vault, tenant)
    await vault.freeze_key(minted.key.name, reason="runaway loop")
    await vault.unfreeze_key(minted.key.name)
    await vault.revoke_key(minted.key.name, reason="leaked in a log")
    await until(lambda: len({r.webhook_id for r in receiver.received}) == 3, what="three events")
    by_type = {r.payload["type"]: r.payload["data"] for r in receiver.received}
    assert by_type["key.frozen"]["reason"] == "runaway loop"
    assert by_type["key.revoked"]["reason"] == "leaked in a log"
    for data in by_type.values():
        assert data["key_id"] == minted.key.key_id and data["actor"].startswith("admin:")


async def test_slack_format_is_a_readable_message(
    clients: tuple[VaultClient, MeteringClient], metering: Any, receiver: Receiver, tenant: str
) -> None:
    vault, _ = clients
    await subscribe(
        metering, ADMIN, tenant, receiver.url, ["key.frozen"], format=alerts_pb2.ALERT_FORMAT_SLACK
    )
    minted = await mint(vault, tenant)
    await vault.freeze_key(minted.key.name, reason="runaway loop")
    await until(lambda: receiver.received, what="the Slack message")
    text = receiver.received[0].payload["text"]
    assert f"tenant {tenant}" in text and f"key {minted.key.key_id}" in text
    assert "frozen" in text and "runaway loop" in text


async def test_subscriptions_list_and_delete_never_show_the_secret(
    metering: Any, receiver: Receiver, tenant: str
) -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    request = alerts_pb2.CreateAlertSubscriptionRequest(
        tenant_id=tenant,
        signing_secret=secret,
        request_id="sub-1",
        subscription=alerts_pb2.AlertSubscription(url=receiver.url, event_types=["key.revoked"]),
    )
    first = await metering.CreateAlertSubscription(request, metadata=ADMIN, timeout=10)
    again = await metering.CreateAlertSubscription(request, metadata=ADMIN, timeout=10)
    assert first.signing_secret == again.signing_secret == secret
    assert first.subscription.name == again.subscription.name
    listed = await metering.ListAlertSubscriptions(
        alerts_pb2.ListAlertSubscriptionsRequest(tenant_id=tenant), metadata=ADMIN, timeout=10
    )
    assert [s.name for s in listed.subscriptions] == [first.subscription.name]
    assert secret not in str(listed) and secret[6:] not in str(listed)
    await metering.DeleteAlertSubscription(
        alerts_pb2.DeleteAlertSubscriptionRequest(name=first.subscription.name),
        metadata=ADMIN,
        timeout=10,
    )
    listed = await metering.ListAlertSubscriptions(
        alerts_pb2.ListAlertSubscriptionsRequest(tenant_id=tenant), metadata=ADMIN, timeout=10
    )
    assert not listed.subscriptions


@pytest.mark.parametrize(
    ("url", "types", "field"),
    [
        ("ftp://example.com/hook", ["key.frozen"], "subscription.url"),
        ("not a url", ["key.frozen"], "subscription.url"),
        ("http://[::1/hook", ["key.frozen"], "subscription.url"),
        ("http://127.0.0.1/hook", ["key.melted"], "subscription.event_types"),
        ("http://127.0.0.1/hook", [], "subscription.event_types"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    metering: Any, tenant: str, url: str, types: list[str], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await subscribe(metering, ADMIN, tenant, url, types)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == [field]


async def test_only_admins_manage_subscriptions(
    clients: tuple[VaultClient, MeteringClient], metering: Any, tenant: str
) -> None:
    vault, _ = clients
    minted = await mint(vault, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await subscribe(
            metering, bearer(minted.secret), tenant, "http://127.0.0.1/h", ["key.frozen"]
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_burst_of_denials_is_announced_once_per_minute(
    clients: tuple[VaultClient, MeteringClient], metering: Any, receiver: Receiver, tenant: str
) -> None:
    vault, _ = clients
    await subscribe(metering, ADMIN, tenant, receiver.url, ["key.denial_burst"])
    one_a_minute = vault_pb2.RateLimit(limit=1, window=duration_pb2.Duration(seconds=60))
    minted = await mint(vault, tenant, rate_limits=[one_a_minute])
    replies = [await vault.authorize(key=minted.secret, scope="api.call") for _ in range(25)]
    assert sum(r.decision == vault_pb2.DECISION_DENY for r in replies) == 24
    bursts = await until(lambda: receiver.of_type("key.denial_burst"), what="the burst alert")
    # Once per minute: a run straddling a minute boundary may see a second one, never more.
    assert len({b.webhook_id for b in bursts}) <= 2
    data = bursts[0].payload["data"]
    assert data["key_id"] == minted.key.key_id and data["denials"] >= 20


async def test_a_throttle_again_after_a_lift_is_announced_again(
    clients: tuple[VaultClient, MeteringClient], metering: Any, receiver: Receiver, tenant: str
) -> None:
    vault, client = clients
    await subscribe(
        metering, ADMIN, tenant, receiver.url, ["tenant.throttled", "tenant.throttle_lifted"]
    )
    await client.set_tenant_budget(tenant_id=tenant, daily_threshold=usd(1_000_000))
    minted = await mint(vault, tenant)
    async with guard(vault, client, key=minted.secret, scope="api.call",
                     estimated_cost=("USD", 1_200_000)) as call:  # fmt: skip
        call.actual_cost = ("USD", 1_200_000)
    first = await until(lambda: receiver.of_type("tenant.throttled"), what="the throttle")
    assert first[0].payload["data"]["limit_micros"] == 1_000_000
    # Lift it (with a higher threshold), then set one below today's spend: throttled again.
    await client.set_tenant_budget(
        tenant_id=tenant, daily_threshold=usd(2_000_000), lift_throttle=True
    )
    await until(lambda: receiver.of_type("tenant.throttle_lifted"), what="the lift")
    await client.set_tenant_budget(tenant_id=tenant, daily_threshold=usd(500_000))
    assert (await client.get_tenant(tenant)).throttled

    async def twice() -> list[Any]:
        found = receiver.of_type("tenant.throttled")
        return found if len({t.webhook_id for t in found}) == 2 else []

    throttles = await until(twice, what="the second throttle")
    assert sorted(t.payload["data"]["limit_micros"] for t in throttles) == [500_000, 1_000_000]
