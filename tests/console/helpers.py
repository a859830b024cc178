"""Keys, decisions and charges the console tests look at, made over the real services."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from keyleash.client import MeteringClient, VaultClient
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V

USD = 1_000_000


@dataclass(frozen=True)
class Minted:
    key: V.Key
    secret: str


@dataclass(frozen=True)
class Family:
    tenant: str
    parent: Minted
    children: list[Minted]


def usd_cap(micros: int) -> V.Policy:
    return V.Policy(
        spend_caps=[
            V.SpendCap(
                limit=money_pb2.Money(currency_code="USD", micros=micros),
                window=V.SpendCap.WINDOW_CALENDAR_DAY,
            )
        ]
    )


async def mint(
    vault: VaultClient, tenant: str, label: str, parent_secret: str | None = None, **fields: str
) -> Minted:
    minted = await vault.mint_key(
        tenant_id=tenant,
        agent_id=fields.get("agent_id", "agent-" + label[:8]),
        label=label,
        scopes=["stripe.charges.write"],
        policy=usd_cap(100 * USD),
        token=parent_secret,
    )
    return Minted(minted.key, minted.secret)


async def family(vault: VaultClient, tenant: str) -> Family:
    parent = await mint(vault, tenant, "ops parent")
    children = [
        await mint(vault, tenant, f"worker {n}", parent.secret, agent_id=f"worker-{n}")
        for n in (1, 2)
    ]
    return Family(tenant, parent, children)


async def authorize(vault: VaultClient, secret: str, micros: int, run: str) -> V.AuthorizeResponse:
    return await vault.authorize(
        key=secret,
        scope="stripe.charges.write",
        vendor="stripe",
        method="POST",
        path="/v1/charges",
        estimated_cost=money_pb2.Money(currency_code="USD", micros=micros),
        agent_run_id=run,
        request_id=str(uuid.uuid4()),
    )


async def paid_call(
    vault: VaultClient, metering: MeteringClient, key: Minted, micros: int, run: str
) -> None:
    """An allowed call of `micros` estimated, settled at `micros` (as the gateway would)."""
    decision = await authorize(vault, key.secret, micros, run)
    assert decision.decision == V.DECISION_ALLOW, decision
    await metering.charge(
        key_id=key.key.key_id,
        reservation_id=decision.reservation_id,
        amount=money_pb2.Money(currency_code="USD", micros=micros),
        vendor="stripe",
        endpoint="POST /v1/charges",
        agent_run_id=run,
        request_id=str(uuid.uuid4()),
    )


async def audited(vault: VaultClient, tenant: str, run: str, count: int) -> None:
    """Waits until `count` decisions of the run are in the audit (written behind the decision,
    from a Redis stream to Postgres), so a page shows them all."""
    for _ in range(300):
        listed = await vault.list_authorizations(tenant_id=tenant, agent_run_id=run)
        if len(listed.authorizations) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} decisions of {run} never reached the audit")
