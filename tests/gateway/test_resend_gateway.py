"""The official Resend SDK through the gateway, against a local stand-in of api.resend.com."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest
import resend

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.vault.v1 import vault_pb2
from keyleash_gateway.vendors.resend import PER_RECIPIENT_MICROS, PRICE_TABLE
from tests.gateway.conftest import Gateway
from tests.gateway.standins import StandIn
from tests.gateway.stripe_helpers import events, in_thread, spent, usd_cap


async def _tenant(
    tenant: str,
    connections: ConnectionsClient,
    vault: VaultClient,
    upstream: StandIn,
    policy: vault_pb2.Policy,
) -> tuple[str, str]:
    secret = "re_" + secrets.token_hex(16)
    upstream.accepted_secrets.add(secret)
    await connections.create_connection(
        tenant_id=tenant,
        connection=vault_pb2.Connection(vendor="resend", base_url=upstream.url),
        secret=secret,
    )
    minted = await vault.mint_key(
        tenant_id=tenant, agent_id="mailer", scopes=["resend.emails.write"], policy=policy
    )
    return minted.secret, secret


def _send(gateway_url: str, key: str, params: dict[str, Any]) -> Any:
    """The README's setup: the vault key as the API key, the gateway as the API URL."""
    resend.api_key = key
    resend.api_url = f"{gateway_url}/resend"
    return resend.Emails.send(params)  # type: ignore[arg-type]


async def test_emails_are_charged_per_recipient_and_limited_to_allowed_domains(
    gateway: Gateway,
    resend_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    policy = vault_pb2.Policy(constraints=[
        vault_pb2.AttributeConstraint(attribute="from", allowed_values=["*@acme.com"]),
        vault_pb2.AttributeConstraint(attribute="recipient_domain", allowed_values=["acme.com", "partner.io"]),
    ])  # fmt: skip
    key, upstream_secret = await _tenant(
        tenant, admin_connections, admin_vault, resend_upstream, policy
    )
    marker = uuid.uuid4().hex
    sent = await in_thread(
        _send,
        gateway.url,
        key,
        {
            "from": "Ops <ops@acme.com>",
            "to": ["a@acme.com", "b@partner.io"],
            "cc": ["c@acme.com"],
            "subject": marker,
            "html": "<p>hi</p>",
        },
    )
    assert sent["id"]
    [seen] = resend_upstream.seen_by(marker)
    assert seen.headers["Authorization"] == f"Bearer {upstream_secret}" and key not in str(
        seen.headers
    )
    assert await spent(admin_metering, tenant) == {"USD": 3 * PER_RECIPIENT_MICROS}
    [event] = await events(admin_metering, tenant)
    assert (event.vendor, event.vendor_request_id, event.cost_source) == (
        "resend",
        sent["id"],
        PRICE_TABLE,
    )
    for params in (
        {"from": "ops@acme.com", "to": ["a@acme.com", "x@evil.io"], "subject": marker},
        {"from": "ops@evil.io", "to": ["a@acme.com"], "subject": marker},
    ):
        with pytest.raises(resend.exceptions.ResendError) as denied:
            await in_thread(_send, gateway.url, key, params)
        assert str(denied.value.code) == "403"
    assert len(resend_upstream.seen_by(marker)) == 1


async def test_rejected_emails_cost_nothing_and_caps_hold(
    gateway: Gateway,
    resend_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key, _ = await _tenant(
        tenant, admin_connections, admin_vault, resend_upstream, usd_cap(3 * PER_RECIPIENT_MICROS)
    )
    with pytest.raises(resend.exceptions.ResendError) as rejected:
        await in_thread(
            _send,
            gateway.url,
            key,
            {"from": "ops@acme.com", "to": ["a@acme.com"], "subject": "reject"},
        )
    assert str(rejected.value.code) == "422"  # the vendor's own answer, passed through
    await in_thread(
        _send,
        gateway.url,
        key,
        {"from": "ops@acme.com", "to": ["a@acme.com", "b@acme.com"], "subject": "ok"},
    )
    with pytest.raises(resend.exceptions.ResendError) as capped:
        await in_thread(
            _send,
            gateway.url,
            key,
            {"from": "ops@acme.com", "to": ["a@acme.com", "b@acme.com"], "subject": "ok"},
        )
    assert str(capped.value.code) == "402"
    assert await spent(admin_metering, tenant) == {"USD": 2 * PER_RECIPIENT_MICROS}
