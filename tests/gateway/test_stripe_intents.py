"""Confirming a PaymentIntent through the gateway: the confirm request carries no amount, so the
gateway reads the intent first and holds what it will move (issue #15: a confirm must not slip
past a cap because its request names no amount)."""

from __future__ import annotations

import pytest
import stripe

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.vault.v1 import vault_pb2
from tests.gateway.conftest import Gateway
from tests.gateway.standins import StandIn
from tests.gateway.stripe_helpers import USD, StripeTenant, in_thread, spent, stripe_tenant, usd_cap

SCOPES = ("stripe.payment_intents.write",)


def code(error: stripe.StripeError) -> str:
    assert isinstance(error.json_body, dict)
    return str(error.json_body["error"]["code"])


async def _intent(t: StripeTenant, gateway_url: str, amount: int, currency: str = "usd") -> str:
    created = await in_thread(
        t.sdk(gateway_url).v1.payment_intents.create,
        {"amount": amount, "currency": currency, "description": t.run_id},
    )
    assert created.status == "requires_confirmation"
    return str(created.id)


def _confirms(upstream: StandIn, intent_id: str) -> list[str]:
    return [s.method for s in upstream.seen if s.path == f"/v1/payment_intents/{intent_id}/confirm"]


async def test_a_confirm_holds_the_intents_amount_and_stops_at_the_cap(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    policy = usd_cap(50 * USD)
    t = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, policy=policy, scopes=SCOPES
    )
    client = t.sdk(gateway.url)
    # Creating holds the amount too, and releases it: an unconfirmed intent moved nothing.
    first, second = await _intent(t, gateway.url, 4000), await _intent(t, gateway.url, 2000)
    assert await spent(admin_metering, tenant) == {"USD": 0}
    confirmed = await in_thread(client.v1.payment_intents.confirm, first)
    assert confirmed.status == "succeeded"
    assert await spent(admin_metering, tenant) == {"USD": 40 * USD}

    with pytest.raises(stripe.StripeError) as crossed:  # 40 + 20 would cross 50
        await in_thread(client.v1.payment_intents.confirm, second)
    assert crossed.value.http_status == 402 and code(crossed.value) == "SPEND_CAP_EXCEEDED"
    assert _confirms(stripe_upstream, second) == []  # read, never confirmed
    assert await spent(admin_metering, tenant) == {"USD": 40 * USD}


async def test_a_confirm_meets_the_intents_constraints_and_stripes_own_errors(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    only_usd = vault_pb2.Policy(
        constraints=[vault_pb2.AttributeConstraint(attribute="currency", allowed_values=["usd"])]
    )
    wide = await stripe_tenant(
        tenant, admin_connections, admin_vault, stripe_upstream, scopes=SCOPES
    )
    in_euros = await _intent(wide, gateway.url, 1000, currency="eur")
    narrow = await admin_vault.mint_key(
        tenant_id=tenant, agent_id="bot", scopes=list(SCOPES), policy=only_usd
    )
    narrow_client = StripeTenant(
        tenant, narrow.secret, narrow.key.name, wide.upstream_secret, wide.connection, wide.run_id
    ).sdk(gateway.url)
    with pytest.raises(stripe.PermissionError) as constraint:
        await in_thread(narrow_client.v1.payment_intents.confirm, in_euros)
    assert code(constraint.value) == "CONSTRAINT_DENIED"
    assert _confirms(stripe_upstream, in_euros) == []

    with pytest.raises(stripe.InvalidRequestError) as missing:
        await in_thread(narrow_client.v1.payment_intents.confirm, "pi_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"

    await admin_vault.freeze_key(narrow.key.name, reason="runaway")
    reads_before = len(stripe_upstream.seen)
    with pytest.raises(stripe.AuthenticationError) as frozen:
        await in_thread(narrow_client.v1.payment_intents.confirm, in_euros)
    assert code(frozen.value) == "KEY_FROZEN"
    assert len(stripe_upstream.seen) == reads_before  # not even the read went upstream
