"""The official Stripe SDK through the gateway, against a local stand-in of api.stripe.com."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.client._transport import AsyncInvoker
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.standins import StandIn
from tests.gateway.stripe_helpers import (
    USD,
    charge,
    events,
    in_thread,
    spent,
    stripe_tenant,
    usd_cap,
)


def code(error: stripe.StripeError) -> str:
    """The gateway's denial code, as the SDK parsed the answer body."""
    assert isinstance(error.json_body, dict)
    return str(error.json_body["error"]["code"])


async def test_the_vendor_gets_the_real_secret_and_the_cost_is_the_vendors_amount(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    result = await charge(t, gateway.url, 2000, customer="cus_42")
    assert result.status == "succeeded" and result.amount == 2000
    [seen] = stripe_upstream.seen_by(t.run_id)
    assert seen.headers["Authorization"] == f"Bearer {t.upstream_secret}"
    assert all(t.key not in value for value in seen.headers.values())
    assert t.key.encode() not in seen.body
    assert "X-Keyleash-Run-Id" not in seen.headers
    assert await spent(admin_metering, tenant) == {"USD": 20 * USD}
    [event] = await events(admin_metering, tenant)
    assert (event.vendor, event.vendor_request_id, event.agent_run_id) == (
        "stripe",
        result.id,
        t.run_id,
    )
    assert event.endpoint == "POST /v1/charges" and event.attributes["upstream_status"] == "200"


async def test_a_50_usd_daily_cap_stops_the_call_that_would_cross_it_before_the_vendor_sees_it(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=usd_cap(50 * USD)
    )
    await charge(t, gateway.url, 2000)
    await charge(t, gateway.url, 2000)
    with pytest.raises(stripe.CardError) as denied:
        await charge(t, gateway.url, 2000)
    assert denied.value.http_status == 402 and denied.value.code == "SPEND_CAP_EXCEEDED"
    assert "STOP: spend cap exhausted, do not retry" in str(denied.value.user_message)
    assert len(stripe_upstream.seen_by(t.run_id)) == 2
    await charge(t, gateway.url, 1000)  # exactly up to the cap is allowed
    assert await spent(admin_metering, tenant) == {"USD": 50 * USD}


async def test_frozen_key_gets_401_and_the_vendor_receives_nothing_even_from_many_callers(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    await charge(t, gateway.url, 100)
    await admin_vault.freeze_key(t.key_name, reason="runaway")
    results = await asyncio.gather(
        *(charge(t, gateway.url, 100) for _ in range(24)), return_exceptions=True
    )
    assert all(isinstance(r, stripe.AuthenticationError) for r in results), results
    assert {code(r) for r in results if isinstance(r, stripe.StripeError)} == {"KEY_FROZEN"}
    assert len(stripe_upstream.seen_by(t.run_id)) == 1


async def test_rotation_takes_effect_on_the_next_call(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    await charge(t, gateway.url, 100)
    stripe_upstream.accepted_secrets.discard(t.upstream_secret)  # the vendor revoked the old one
    new_secret = t.upstream_secret + "-rotated"
    stripe_upstream.accepted_secrets.add(new_secret)
    await admin_connections.rotate_connection_secret(t.connection, new_secret)
    await charge(t, gateway.url, 100)
    first, second = stripe_upstream.seen_by(t.run_id)
    assert first.headers["Authorization"] == f"Bearer {t.upstream_secret}"
    assert second.headers["Authorization"] == f"Bearer {new_secret}"


async def test_endpoints_vendors_and_attributes_outside_the_policy_get_403(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    policy = vault_pb2.Policy(
        allowed_endpoints=["POST /v1/charges"],
        constraints=[vault_pb2.AttributeConstraint(attribute="currency", allowed_values=["usd"])],
    )
    scopes = ("stripe.charges.write", "stripe.payment_intents.write")
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=policy, scopes=scopes
    )
    client = t.sdk(gateway.url)
    with pytest.raises(stripe.PermissionError) as endpoint:
        await in_thread(
            client.v1.payment_intents.create,
            {"amount": 100, "currency": "usd", "description": t.run_id},
        )
    assert code(endpoint.value) == "ENDPOINT_DENIED"
    with pytest.raises(stripe.PermissionError) as constraint:
        await charge(t, gateway.url, 100, currency="eur")
    assert code(constraint.value) == "CONSTRAINT_DENIED"
    with pytest.raises(stripe.PermissionError) as unknown:
        await in_thread(
            client.v1.transfers.create,
            {"amount": 100, "currency": "usd", "destination": "acct_1", "description": t.run_id},
        )
    assert code(unknown.value) == "ENDPOINT_DENIED"
    with pytest.raises(stripe.PermissionError) as scope:
        await in_thread(client.v1.refunds.create, {"charge": "ch_1", "metadata": {"run": t.run_id}})
    assert code(scope.value) == "SCOPE_DENIED"
    assert stripe_upstream.seen_by(t.run_id) == []


async def test_a_declined_card_passes_through_unchanged_and_releases_the_hold(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=usd_cap(50 * USD)
    )
    with pytest.raises(stripe.CardError) as declined:
        await charge(t, gateway.url, 5000, mode="declined")
    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    with pytest.raises(stripe.InvalidRequestError):
        await charge(t, gateway.url, 5000, mode="invalid")
    await charge(t, gateway.url, 5000)  # both holds were released: the whole cap is free
    assert await spent(admin_metering, tenant) == {"USD": 50 * USD}


async def test_vendor_down_nothing_sent_and_the_hold_is_released(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(
        tenant,
        admin_connections,
        admin_vault,
        stripe_upstream,
        policy=usd_cap(50 * USD),
        base_url="http://127.0.0.1:9",
    )
    with pytest.raises(stripe.APIError) as down:
        await charge(t, gateway.url, 4000)
    assert down.value.http_status == 502
    assert await spent(admin_metering, tenant) in ({}, {"USD": 0})
    decision = await admin_vault.authorize(
        key=t.key,
        scope="stripe.charges.write",
        vendor="stripe",
        estimated_cost=money_pb2.Money(currency_code="USD", micros=50 * USD),
    )
    assert decision.decision == vault_pb2.DECISION_ALLOW, "the 40 USD hold was not released"


@pytest.mark.parametrize("mode", ["reset", "500"])
async def test_unknown_outcomes_keep_the_hold(
    mode: str,
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=usd_cap(50 * USD)
    )
    with pytest.raises(stripe.APIError) as unknown:
        await charge(t, gateway.url, 4000, mode=mode)
    assert unknown.value.http_status == (504 if mode == "reset" else 500)
    with pytest.raises(stripe.CardError) as held:
        await charge(t, gateway.url, 2000)
    assert held.value.code == "SPEND_CAP_EXCEEDED"


async def test_a_timed_out_call_retried_with_the_same_idempotency_key_is_charged_once(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=usd_cap(50 * USD)
    )
    stripe_upstream.release_slow.clear()
    try:
        with pytest.raises(stripe.APIError) as timed_out:
            await charge(t, gateway.url, 3000, mode="slow", idempotency_key=f"idem-{t.run_id}")
        assert timed_out.value.http_status == 504
    finally:
        stripe_upstream.release_slow.set()
    for _ in range(500):  # the vendor finishes the first attempt after the gateway gave up
        if f"idem-{t.run_id}" in stripe_upstream.replies:
            break
        await asyncio.sleep(0.01)
    retried = await charge(t, gateway.url, 3000, mode="slow", idempotency_key=f"idem-{t.run_id}")
    again = await charge(t, gateway.url, 3000, mode="slow", idempotency_key=f"idem-{t.run_id}")
    assert retried.id == again.id
    assert await spent(admin_metering, tenant) == {"USD": 30 * USD}
    assert [e.amount.micros for e in await events(admin_metering, tenant)] == [30 * USD]
    await charge(t, gateway.url, 2000)  # the first attempt's hold became the charge, not extra


async def test_refunds_are_negative_charges_and_reads_cost_nothing(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    paid = await charge(t, gateway.url, 2000)
    client = t.sdk(gateway.url)
    refund = await in_thread(
        client.v1.refunds.create,
        {"charge": paid.id, "amount": 700, "currency": "usd", "metadata": {"run": t.run_id}},
    )
    assert refund.status == "succeeded"
    fetched = await in_thread(client.v1.charges.retrieve, paid.id)
    assert fetched.id == paid.id
    assert await spent(admin_metering, tenant) == {"USD": 13 * USD}


async def test_an_idempotency_key_reused_for_another_request_is_409_and_nothing_is_sent(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    await charge(t, gateway.url, 2000, idempotency_key="order-7")
    with pytest.raises(stripe.StripeError) as refused:
        await charge(t, gateway.url, 9000, idempotency_key="order-7")
    assert refused.value.http_status == 409 and code(refused.value) == "IDEMPOTENCY_KEY_REUSED"
    assert len(stripe_upstream.seen_by(t.run_id)) == 1
    assert await spent(admin_metering, tenant) == {"USD": 20 * USD}


async def test_an_unknown_currency_is_400_and_nothing_is_sent(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await charge(t, gateway.url, 2000, currency="usx")
    assert refused.value.http_status == 400 and code(refused.value) == "INVALID_REQUEST"
    assert stripe_upstream.seen_by(t.run_id) == []


async def test_many_agents_at_once_are_decided_and_charged_in_batches_to_the_micro(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 calls of 1 USD at once with 25 USD left under the cap: exactly 25 reach Stripe and are
    charged once each, while the gateway sends its Authorizes and Charges as AuthorizeBatch and
    BatchCharge (the real calls, counted)."""
    batched: list[tuple[str, int]] = []
    real = AsyncInvoker.unary

    async def counted(self: AsyncInvoker, rpc: str, request: Any, *args: Any) -> Any:
        if rpc in ("AuthorizeBatch", "BatchCharge"):
            batched.append((rpc, len(request.requests)))
        return await real(self, rpc, request, *args)

    monkeypatch.setattr(AsyncInvoker, "unary", counted)
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=usd_cap(26 * USD)
    )
    await charge(t, gateway.url, 100)  # warm: key, connection secret; 25 USD left
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=40) as pool:
        client = t.sdk(gateway.url)

        def one() -> Any:
            body: Any = {
                "amount": 100, "currency": "usd", "source": "tok_visa",
                "description": f"mode: {t.run_id}",  # how the stand-in tells runs apart
            }  # fmt: skip
            return client.v1.charges.create(body, {"headers": {"X-Keyleash-Run-Id": t.run_id}})

        results = await asyncio.gather(
            *(loop.run_in_executor(pool, one) for _ in range(40)), return_exceptions=True
        )
    allowed = [r for r in results if not isinstance(r, BaseException)]
    denied = [r for r in results if isinstance(r, stripe.CardError)]
    assert (len(allowed), len(denied)) == (25, 15), results
    assert {code(r) for r in denied} == {"SPEND_CAP_EXCEEDED"}
    assert len(stripe_upstream.seen_by(t.run_id)) == 26
    assert await spent(admin_metering, tenant) == {"USD": 26 * USD}
    charged = [e for e in await events(admin_metering, tenant) if e.amount.micros > 0]
    assert len(charged) == 26 and len({e.vendor_request_id for e in charged}) == 26
    assert {rpc for rpc, size in batched if size > 1} == {"AuthorizeBatch", "BatchCharge"}
