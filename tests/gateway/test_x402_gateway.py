"""x402 through the gateway: a resource paid with the SDK's own middleware, a facilitator that
checks signatures without a chain, and the key's policy deciding every payment."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from eth_account import Account
from x402.http.utils import decode_payment_signature_header
from x402.schemas import PaymentPayload

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.gateway.conftest import Gateway, SealedSystem
from tests.gateway.stripe_helpers import events, spent, usd_cap
from tests.gateway.x402_standins import (
    METERED_USED,
    NETWORK,
    OTHER_PAYEE,
    PAYEE,
    PaidResource,
    serve_resource,
)
from tests.integration.test_no_plaintext_secrets import dump_postgres, dump_redis


@pytest.fixture
async def resource() -> AsyncIterator[PaidResource]:
    async with serve_resource() as served:
        yield served


async def _wallet_tenant(
    tenant: str,
    connections: ConnectionsClient,
    vault: VaultClient,
    resource: PaidResource,
    policy: vault_pb2.Policy,
) -> tuple[vault_pb2.MintKeyResponse, str]:
    wallet_key = "0x" + secrets.token_hex(32)
    await connections.create_connection(
        tenant_id=tenant,
        connection=vault_pb2.Connection(vendor="x402", base_url=resource.url),
        secret=wallet_key,
    )
    minted = await vault.mint_key(
        tenant_id=tenant, agent_id="buyer", scopes=["x402.pay"], policy=policy
    )
    return minted, wallet_key


async def _get(gateway: Gateway, key: str, path: str, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{gateway.url}/x402{path}", headers={"Authorization": f"Bearer {key}", **headers}
        ) as answer:
            return answer.status, await answer.json(content_type=None)


def _usd(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


def _paid(resource: PaidResource) -> list[dict[str, str]]:
    return [h for h in resource.seen if "payment-signature" in h]


async def test_a_0_002_usd_call_is_paid_and_charged_exactly(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    policy = vault_pb2.Policy(
        max_cost_per_call=_usd(5_000_000),
        constraints=[
            vault_pb2.AttributeConstraint(attribute="x402_network", allowed_values=[NETWORK]),
            vault_pb2.AttributeConstraint(attribute="x402_payee", allowed_values=[PAYEE]),
        ],
    )
    minted, wallet_key = await _wallet_tenant(
        tenant, admin_connections, admin_vault, resource, policy
    )
    status, body = await _get(gateway, minted.secret, "/paid/cheap")
    assert (status, body) == (200, {"report": "the cheap answer"})
    assert await spent(admin_metering, tenant) == {"USD": 2_000}  # 0.002 USDC = 2000 micros
    [nonce] = resource.facilitator.verified
    [event] = await events(admin_metering, tenant)
    assert event.vendor == "x402"
    assert event.vendor_request_id == resource.facilitator.settled[nonce]
    attributes = dict(event.attributes)
    assert attributes["x402_payee"] == PAYEE and attributes["x402_network"] == NETWORK
    assert (attributes["x402_amount"], attributes["x402_nonce"]) == ("2000", nonce)
    assert attributes["x402_settlement"] == event.vendor_request_id
    # The decision's audit row shows what was paid, for whom and where, before any settlement.
    for _ in range(100):  # decisions are listed once the audit drainer recorded them
        audit = await admin_vault.list_authorizations(tenant_id=tenant)
        if audit.authorizations:
            break
        await asyncio.sleep(0.05)
    decided = dict(audit.authorizations[0].attributes)
    assert (decided["x402_payee"], decided["x402_network"]) == (PAYEE, NETWORK)
    assert (decided["x402_amount"], decided["x402_nonce"]) == ("2000", nonce)
    assert decided["x402_asset"] != ""
    [paid] = _paid(resource)
    assert "authorization" not in paid and wallet_key.removeprefix("0x") not in str(paid)
    assert resource.facilitator.payers == [Account.from_key(wallet_key).address]

    free_status, _ = await _get(gateway, minted.secret, "/free")
    assert free_status == 200 and await spent(admin_metering, tenant) == {"USD": 2_000}


async def test_upto_holds_the_maximum_and_charges_what_was_settled(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    # A 0.012 USD cap: the 0.01 maximum fits once; after 0.003 was charged, 0.009 is left,
    # below the next call's maximum, so the second is refused although it would cost 0.003.
    minted, _ = await _wallet_tenant(
        tenant, admin_connections, admin_vault, resource, usd_cap(12_000)
    )
    status, body = await _get(gateway, minted.secret, "/metered")
    assert (status, body) == (200, {"report": "metered"})
    assert await spent(admin_metering, tenant) == {"USD": int(METERED_USED)}
    [event] = await events(admin_metering, tenant)
    assert (event.attributes["x402_scheme"], event.attributes["x402_amount"]) == ("upto", "10000")
    assert event.vendor_request_id in resource.facilitator.settled.values()
    again, _ = await _get(gateway, minted.secret, "/metered")
    assert again == 402 and len(resource.facilitator.settled) == 1


async def test_a_retry_with_the_same_idempotency_key_pays_once(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    minted, _ = await _wallet_tenant(
        tenant, admin_connections, admin_vault, resource, usd_cap(1_000_000)
    )
    same = {"Idempotency-Key": "report-" + uuid.uuid4().hex}
    first, _ = await _get(gateway, minted.secret, "/paid/cheap", **same)
    again, _ = await _get(gateway, minted.secret, "/paid/cheap", **same)
    assert first == 200 and again == 402  # the resource refuses the spent authorization
    assert len(resource.facilitator.settled) == 1
    assert await spent(admin_metering, tenant) == {"USD": 2_000}


async def test_a_payment_whose_answer_was_lost_is_charged_once_by_its_retry(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    minted, _ = await _wallet_tenant(
        tenant, admin_connections, admin_vault, resource, usd_cap(1_000_000)
    )
    same = {"Idempotency-Key": "slow-" + uuid.uuid4().hex}
    status, body = await _get(gateway, minted.secret, "/paid/slow", **same)
    assert (status, body["error"]["code"]) == (504, "OUTCOME_UNKNOWN")  # the hold stays
    assert resource.facilitator.settled == {} and await spent(admin_metering, tenant) == {}
    resource.slow_answers.set()  # the resource answers (and settles) after the gateway gave up
    await resource.facilitator.settled_one.wait()
    again, _ = await _get(gateway, minted.secret, "/paid/slow", **same)
    assert again == 402  # the same authorization: the resource refuses to be paid twice
    assert len(resource.facilitator.settled) == 1
    assert await spent(admin_metering, tenant) == {"USD": 2_000}
    [event] = await events(admin_metering, tenant)
    assert event.attributes["x402_nonce"] in resource.facilitator.settled


async def test_a_6_usd_price_against_a_5_usd_per_call_limit_is_refused_before_signing(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    policy = vault_pb2.Policy(max_cost_per_call=_usd(5_000_000))
    minted, _ = await _wallet_tenant(tenant, admin_connections, admin_vault, resource, policy)
    status, body = await _get(gateway, minted.secret, "/paid/pricey")
    assert status == 402
    assert body["error"]["code"] == "PER_CALL_CAP_EXCEEDED"
    assert body["error"]["message"].startswith("STOP: spend cap exhausted, do not retry")
    assert _paid(resource) == [] and resource.facilitator.verified == []
    assert await spent(admin_metering, tenant) == {}


async def test_a_payee_outside_the_policy_is_not_paid(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    policy = vault_pb2.Policy(
        constraints=[
            vault_pb2.AttributeConstraint(attribute="x402_payee", allowed_values=["0xnobody"])
        ]
    )
    minted, _ = await _wallet_tenant(tenant, admin_connections, admin_vault, resource, policy)
    status, body = await _get(gateway, minted.secret, "/paid/cheap")
    assert (status, body["error"]["code"]) == (403, "CONSTRAINT_DENIED")
    assert _paid(resource) == []


async def test_the_cheapest_requirement_the_policy_allows_is_paid(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    policy = vault_pb2.Policy(
        constraints=[vault_pb2.AttributeConstraint(attribute="x402_payee", allowed_values=[PAYEE])]
    )
    minted, _ = await _wallet_tenant(tenant, admin_connections, admin_vault, resource, policy)
    assert await _get(gateway, minted.secret, "/choice") == (200, {"report": "chosen"})
    [event] = await events(admin_metering, tenant)
    assert (event.attributes["x402_payee"], event.amount.micros) == (PAYEE, 2_000)
    [paid] = _paid(resource)
    signed = decode_payment_signature_header(paid["payment-signature"])
    assert isinstance(signed, PaymentPayload) and signed.accepted.pay_to == PAYEE != OTHER_PAYEE


async def test_a_key_without_the_x402_scope_reaches_nothing(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    await _wallet_tenant(tenant, admin_connections, admin_vault, resource, vault_pb2.Policy())
    other = await admin_vault.mint_key(
        tenant_id=tenant, agent_id="mailer", scopes=["resend.emails.write"]
    )
    for path in ("/free", "/paid/cheap"):
        status, body = await _get(gateway, other.secret, path)
        assert (status, body["error"]["code"]) == (403, "SCOPE_DENIED")
    assert resource.seen == []


async def test_a_daily_cap_stops_payments_at_exactly_the_cap_under_100_callers(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    minted, _ = await _wallet_tenant(
        tenant, admin_connections, admin_vault, resource, usd_cap(10 * 2_000)
    )
    answers = await asyncio.gather(
        *(_get(gateway, minted.secret, "/paid/cheap") for _ in range(100))
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 10 + [402] * 90
    assert all(
        body["error"]["code"] == "SPEND_CAP_EXCEEDED" for status, body in answers if status == 402
    )
    assert len(resource.facilitator.settled) == 10 and len(_paid(resource)) == 10
    assert await spent(admin_metering, tenant) == {"USD": 20_000}


async def test_a_eur_cap_holds_usdc_prices_converted_by_the_fx_table(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    # 0.002 USD at the shipped USD/EUR 0.925925926 is 1851.85 EUR micros, held as 1852:
    # a cap of three of them pays three calls and refuses the fourth.
    policy = vault_pb2.Policy(
        spend_caps=[
            vault_pb2.SpendCap(
                limit=money_pb2.Money(currency_code="EUR", micros=3 * 1852),
                window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY,
            )
        ]
    )
    minted, _ = await _wallet_tenant(tenant, admin_connections, admin_vault, resource, policy)
    statuses = [(await _get(gateway, minted.secret, "/paid/cheap"))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 402]
    assert len(resource.facilitator.settled) == 3
    assert await spent(admin_metering, tenant) == {"USD": 6_000}


async def test_a_refused_settlement_releases_the_hold(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    minted, _ = await _wallet_tenant(
        tenant, admin_connections, admin_vault, resource, usd_cap(2_000)
    )
    resource.facilitator.refuse_settlement = True
    refused, _ = await _get(gateway, minted.secret, "/paid/cheap")
    assert refused == 402 and await spent(admin_metering, tenant) == {"USD": 0}  # released
    resource.facilitator.refuse_settlement = False
    paid, _ = await _get(gateway, minted.secret, "/paid/cheap")  # the whole cap is free again
    assert paid == 200 and await spent(admin_metering, tenant) == {"USD": 2_000}


async def test_a_wallet_secret_that_is_no_key_signs_nothing_and_is_not_echoed(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    broken = "not-a-key-" + secrets.token_hex(8)
    await admin_connections.create_connection(
        tenant_id=tenant,
        connection=vault_pb2.Connection(vendor="x402", base_url=resource.url),
        secret=broken,
    )
    minted = await admin_vault.mint_key(
        tenant_id=tenant, agent_id="buyer", scopes=["x402.pay"], policy=usd_cap(2_000)
    )
    status, body = await _get(gateway, minted.secret, "/paid/cheap")
    assert (status, body["error"]["code"]) == (400, "INVALID_REQUEST")
    assert broken not in str(body) and broken not in caplog.text
    assert _paid(resource) == [] and await spent(admin_metering, tenant) == {"USD": 0}


async def test_a_frozen_key_pays_nothing_and_the_wallet_key_is_nowhere(
    gateway: Gateway,
    resource: PaidResource,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    sealed_system: SealedSystem,
    redis_client: aioredis.Redis,
    tenant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    minted, wallet_key = await _wallet_tenant(
        tenant, admin_connections, admin_vault, resource, usd_cap(1_000_000)
    )
    ok, _ = await _get(gateway, minted.secret, "/paid/cheap")
    pricey, _ = await _get(gateway, minted.secret, "/paid/pricey")  # a denial's path too
    await admin_vault.freeze_key(minted.key.name, reason="test")
    seen_before = len(resource.seen)
    status, body = await _get(gateway, minted.secret, "/paid/cheap")
    assert (ok, pricey, status, body["error"]["code"]) == (200, 402, 401, "KEY_FROZEN")
    assert len(resource.seen) == seen_before and len(resource.facilitator.settled) == 1
    assert await spent(admin_metering, tenant) == {"USD": 2_000}
    bare = wallet_key.removeprefix("0x")
    stored = await dump_redis(sealed_system.env["KEYLEASH_REDIS_URL"])
    stored += await dump_postgres(sealed_system.env["KEYLEASH_DATABASE_URL"])
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for where in (logged, "\n".join(stored), str(body), str(resource.seen)):
        assert bare not in where and bare.upper() not in where
