"""The official Twilio SDK through the gateway, against a local stand-in of api.twilio.com."""

from __future__ import annotations

import secrets
import uuid

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.vault.v1 import vault_pb2
from keyleash_gateway.vendors import sms
from tests.gateway.conftest import Gateway
from tests.gateway.standins import StandIn, basic_password
from tests.gateway.stripe_helpers import events, in_thread, spent

ACCOUNT = "AC" + "0" * 32


def sdk(gateway_url: str, key: str) -> Client:
    """The README's setup: the Account SID as username, the vault key as the password."""
    client = Client(ACCOUNT, key)
    client.api.base_url = f"{gateway_url}/twilio"
    return client


async def _tenant(
    tenant: str, connections: ConnectionsClient, vault: VaultClient, upstream: StandIn
) -> tuple[str, str]:
    token = secrets.token_hex(16)
    upstream.accepted_secrets.add(token)
    await connections.create_connection(
        tenant_id=tenant,
        connection=vault_pb2.Connection(vendor="twilio", base_url=upstream.url),
        secret=token,
    )
    policy = vault_pb2.Policy(
        constraints=[vault_pb2.AttributeConstraint(attribute="to", allowed_values=["+1*"])]
    )
    minted = await vault.mint_key(
        tenant_id=tenant, agent_id="notifier", scopes=["twilio.messages.write"], policy=policy
    )
    return minted.secret, token


async def test_messages_are_charged_by_segments_or_the_reported_price_and_held_to_allowed_numbers(
    gateway: Gateway,
    twilio_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key, token = await _tenant(tenant, admin_connections, admin_vault, twilio_upstream)
    client = sdk(gateway.url, key)
    marker = uuid.uuid4().hex
    long_text = f"{marker} " + "a" * 200  # two GSM-7 segments
    estimated = await in_thread(
        client.messages.create, to="+14155550100", from_="+15005550006", body=long_text
    )
    priced = await in_thread(
        client.messages.create, to="+14155550100", from_="+15005550006", body=f"{marker} priced"
    )
    assert estimated.sid.startswith("SM") and priced.price == "-0.00790"
    seen = twilio_upstream.seen_by(marker)
    assert [basic_password(s.headers["Authorization"]) for s in seen] == [token, token]
    assert all(key not in str(s.headers) for s in seen)
    assert await spent(admin_metering, tenant) == {"USD": 2 * 8_300 + 7_900}
    assert sorted(e.cost_source for e in await events(admin_metering, tenant)) == [
        sms.PRICE_TABLE,
        "vendor_response",
    ]
    with pytest.raises(TwilioRestException) as denied:
        await in_thread(
            client.messages.create, to="+447700900123", from_="+15005550006", body=marker
        )
    assert denied.value.status == 403
    with pytest.raises(TwilioRestException) as invalid:
        await in_thread(
            client.messages.create, to="+15005550001", from_="+15005550006", body=marker
        )
    assert (invalid.value.status, invalid.value.code) == (400, 21211)  # the vendor's own error
    assert len(twilio_upstream.seen_by(marker)) == 3
    assert await spent(admin_metering, tenant) == {"USD": 2 * 8_300 + 7_900}
