"""The official Twilio SDK through the gateway, against a local stand-in of api.twilio.com."""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import parse_qsl

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.vault.v1 import vault_pb2
from keyleash_gateway.app import create_app
from keyleash_gateway.settings import GatewaySettings
from keyleash_gateway.vendors import sms
from tests.conftest import SERVICE_TOKEN
from tests.gateway.conftest import Gateway, SealedSystem
from tests.gateway.standins import StandIn, basic_password, serve
from tests.gateway.stripe_helpers import OPEN_SESSIONS, events, in_thread, spent

ACCOUNT = "AC" + "0" * 32


def sdk(gateway_url: str, key: str) -> Client:
    """The README's setup: the Account SID as username, the vault key as the password."""
    client = Client(ACCOUNT, key)
    client.api.base_url = f"{gateway_url}/twilio"
    if client.http_client.session is not None:
        OPEN_SESSIONS.append(client.http_client.session)
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


async def test_a_signed_status_callback_corrects_the_estimate_with_a_new_event(
    sealed_system: SealedSystem,
    twilio_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    tenant: str,
) -> None:
    key, token = await _tenant(tenant, admin_connections, admin_vault, twilio_upstream)
    public = "https://gateway.example.test"
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        vault_target=sealed_system.vault_address,
        metering_target=sealed_system.metering_address,
        service_token=SERVICE_TOKEN,
        public_url=public,
    )
    runner, url = await serve(create_app(settings))
    try:
        marker = uuid.uuid4().hex
        message = await in_thread(
            sdk(url, key).messages.create, to="+14155550100", from_="+15005550006", body=marker
        )
        [seen] = twilio_upstream.seen_by(marker)
        callback = dict(parse_qsl(seen.body.decode()))["StatusCallback"]
        assert callback.startswith(public + "/twilio/_keyleash/status?")
        params = {
            "MessageSid": message.sid,
            "MessageStatus": "delivered",
            "AccountSid": ACCOUNT,
            "To": "+14155550100",
            "From": "+15005550006",
            "ApiVersion": "2010-04-01",
        }
        local = url + callback.removeprefix(public)
        forged = await _post_form(local, params, "bm90IGEgc2lnbmF0dXJl")
        assert forged == 403
        signature = RequestValidator(token).compute_signature(callback, params)
        assert await _post_form(local, params, signature) == 204
        assert await _post_form(local, params, signature) == 204  # Twilio may call again: once
        assert (
            await _post_form(
                local,
                params | {"MessageStatus": "sent"},
                RequestValidator(token).compute_signature(
                    callback, params | {"MessageStatus": "sent"}
                ),
            )
            == 204
        )
    finally:
        await runner.cleanup()
    recorded = sorted(
        (e.amount.micros, e.cost_source) for e in await events(admin_metering, tenant)
    )
    assert recorded == [(15_800 - 8_300, "vendor_response"), (8_300, sms.PRICE_TABLE)]
    assert await spent(admin_metering, tenant) == {"USD": 15_800}


async def _post_form(url: str, params: dict[str, str], signature: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=params, headers={"X-Twilio-Signature": signature}) as response,
    ):
        return response.status
