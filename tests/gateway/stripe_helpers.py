"""Set-up shared by the Stripe gateway tests: a tenant with a Stripe connection to the stand-in,
a key with a policy, the official SDK pointed at the gateway."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import stripe

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.gateway.standins import StandIn

T = TypeVar("T")
USD = 1_000_000
# Sessions the SDK clients of a test opened; the autouse fixture `close_sdk_sessions` closes
# them, so no socket is left for the garbage collector to warn about in a later test.
OPEN_SESSIONS: list[requests.Session] = []


def tracked_session() -> requests.Session:
    session = requests.Session()
    OPEN_SESSIONS.append(session)
    return session


@dataclass
class StripeTenant:
    tenant: str
    key: str  # the vault key the agent holds
    key_name: str
    upstream_secret: str
    connection: str
    run_id: str

    def sdk(self, gateway_url: str) -> stripe.StripeClient:
        """The official client, configured as the README says: base URL and the vault key."""
        return stripe.StripeClient(
            self.key,
            base_addresses={"api": f"{gateway_url}/stripe"},
            max_network_retries=0,
            http_client=stripe.RequestsClient(session=tracked_session()),
        )


def usd_cap(micros: int) -> vault_pb2.Policy:
    return vault_pb2.Policy(
        spend_caps=[
            vault_pb2.SpendCap(
                limit=money_pb2.Money(currency_code="USD", micros=micros),
                window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY,
            )
        ]
    )


async def stripe_tenant(
    tenant: str,
    connections: ConnectionsClient,
    vault: VaultClient,
    upstream: StandIn,
    *,
    policy: vault_pb2.Policy | None = None,
    scopes: tuple[str, ...] = (
        "stripe.charges.write",
        "stripe.refunds.write",
        "stripe.charges.read",
    ),
    base_url: str | None = None,
) -> StripeTenant:
    secret = "sk_test_" + secrets.token_hex(16)
    upstream.accepted_secrets.add(secret)
    connection = await connections.create_connection(
        tenant_id=tenant,
        connection=vault_pb2.Connection(vendor="stripe", base_url=base_url or upstream.url),
        secret=secret,
    )
    minted = await vault.mint_key(
        tenant_id=tenant,
        agent_id="billing-bot",
        scopes=list(scopes),
        policy=policy or vault_pb2.Policy(),
    )
    return StripeTenant(
        tenant,
        minted.secret,
        minted.key.name,
        secret,
        connection.name,
        "run-" + uuid.uuid4().hex[:8],
    )


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The SDKs are blocking (requests): run them off the loop the servers answer on."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def charge(
    t: StripeTenant,
    gateway_url: str,
    amount: int,
    *,
    mode: str = "",
    currency: str = "usd",
    idempotency_key: str = "",
    **params: Any,
) -> Any:
    client = t.sdk(gateway_url)
    options: dict[str, Any] = {"headers": {"X-Keyleash-Run-Id": t.run_id}}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    body = {
        "amount": amount,
        "currency": currency,
        "source": "tok_visa",
        "description": f"mode:{mode} {t.run_id}",
        **params,
    }
    return await in_thread(client.v1.charges.create, body, options)


async def spent(metering: MeteringClient, tenant: str) -> dict[str, int]:
    response = await metering.get_spend(tenant_id=tenant)
    return {m.currency_code: m.micros for m in response.totals}


async def events(metering: MeteringClient, tenant: str) -> list[metering_pb2.BillingEvent]:
    page = await metering.list_billing_events(
        filter=metering_pb2.BillingEventFilter(tenant_id=tenant)
    )
    return list(page.events)
