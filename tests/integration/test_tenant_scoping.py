"""Issue #14, defects 5 and 7: tenant ids are confined to one alphabet on every RPC (they enter
Redis key names), and spend by agent or run is read within one tenant, never across tenants."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer

from .test_metering import admin, bad_fields, charge, mint, service, usd

BAD_TENANTS = ["*", "acme corp", "%s", "acme\u202egnp", "Acme", "-acme", "a" * 64, "a/b", "a:b"]
GOOD_TENANTS = ["acme", "a", "acme.eu-1_x", "0", "a" * 63]


async def invalid(call: Any, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert field in bad_fields(caught.value)


def vault_calls(vault: Any, bad: str) -> list[tuple[Any, str]]:
    name = f"tenants/{bad}/keys/k_00000000000000000000"
    auth = bearer(admin())
    mint_request = vault_pb2.MintKeyRequest(
        tenant_id=bad, agent_id="a", label="l", scopes=["api.call"]
    )
    return [
        (vault.MintKey(mint_request, metadata=auth), "tenant_id"),
        (vault.ListKeys(vault_pb2.ListKeysRequest(tenant_id=bad), metadata=auth), "tenant_id"),
        (
            vault.ListAuthorizations(
                vault_pb2.ListAuthorizationsRequest(tenant_id=bad), metadata=auth
            ),
            "tenant_id",
        ),
        (vault.GetKey(vault_pb2.GetKeyRequest(name=name), metadata=auth), "name"),
        (vault.FreezeKey(vault_pb2.FreezeKeyRequest(name=name), metadata=auth), "name"),
        (vault.UnfreezeKey(vault_pb2.UnfreezeKeyRequest(name=name), metadata=auth), "name"),
        (vault.RevokeKey(vault_pb2.RevokeKeyRequest(name=name), metadata=auth), "name"),
        (
            vault.UpdateKeyPolicy(vault_pb2.UpdateKeyPolicyRequest(name=name), metadata=auth),
            "name",
        ),
    ]


def metering_calls(metering: Any, bad: str) -> list[tuple[Any, str]]:
    auth = bearer(admin())
    events = metering_pb2.ListBillingEventsRequest(
        filter=metering_pb2.BillingEventFilter(tenant_id=bad)
    )
    return [
        (
            metering.SetTenantBudget(
                metering_pb2.SetTenantBudgetRequest(tenant_id=bad, daily_threshold=usd("1.00")),
                metadata=auth,
            ),
            "tenant_id",
        ),
        (
            metering.GetTenant(metering_pb2.GetTenantRequest(tenant_id=bad), metadata=auth),
            "tenant_id",
        ),
        (
            metering.GetSpend(metering_pb2.GetSpendRequest(tenant_id=bad), metadata=auth),
            "tenant_id",
        ),
        (
            metering.GetSpend(
                metering_pb2.GetSpendRequest(key_name=f"tenants/{bad}/keys/k_0"), metadata=auth
            ),
            "key_name",
        ),
        (
            metering.GetSpend(
                metering_pb2.GetSpendRequest(agent_run_id="r", subject_tenant_id=bad),
                metadata=auth,
            ),
            "subject_tenant_id",
        ),
        (metering.ListBillingEvents(events, metadata=auth), "filter.tenant_id"),
    ]


@pytest.mark.parametrize("bad", BAD_TENANTS)
async def test_every_rpc_refuses_a_tenant_id_outside_the_alphabet(
    vault: Any, metering: Any, bad: str
) -> None:
    for call, field in [*vault_calls(vault, bad), *metering_calls(metering, bad)]:
        await invalid(call, field)


@pytest.mark.parametrize("good", GOOD_TENANTS)
async def test_tenant_ids_inside_the_alphabet_are_accepted(
    vault: Any, metering: Any, good: str
) -> None:
    tenant = good[:-8] + uuid.uuid4().hex[:8] if len(good) > 8 else good + uuid.uuid4().hex[:8]
    minted = await mint(vault, admin(), tenant)
    assert minted.key.tenant_id == tenant
    got = await vault.GetKey(
        vault_pb2.GetKeyRequest(name=minted.key.name), metadata=bearer(admin())
    )
    assert got.key_id == minted.key.key_id


async def test_spend_by_run_and_agent_never_mixes_tenants(vault: Any, metering: Any) -> None:
    run, agent = "run-" + uuid.uuid4().hex[:8], "agent-" + uuid.uuid4().hex[:8]
    tenants = ["ta-" + uuid.uuid4().hex[:8], "tb-" + uuid.uuid4().hex[:8]]
    keys = []
    for tenant, amount in zip(tenants, ("1.00", "2.00"), strict=True):
        request = vault_pb2.MintKeyRequest(
            tenant_id=tenant, agent_id=agent, label="l", scopes=["api.call"]
        )
        minted = await vault.MintKey(request, metadata=bearer(admin()))
        keys.append(minted)
        await charge(metering, minted.key.key_id, amount, agent_run_id=run)

    async def spend(token: str, **subject: Any) -> list[tuple[str, int]]:
        request = metering_pb2.GetSpendRequest(**subject)
        reply = await metering.GetSpend(request, metadata=bearer(token))
        return [(t.currency_code, t.micros) for t in reply.totals]

    for token in (admin(), service()):
        assert await spend(token, agent_run_id=run, subject_tenant_id=tenants[0]) == [
            ("USD", 1_000_000)
        ]
        assert await spend(token, agent_id=agent, subject_tenant_id=tenants[1]) == [
            ("USD", 2_000_000)
        ]
        await invalid(
            metering.GetSpend(
                metering_pb2.GetSpendRequest(agent_run_id=run), metadata=bearer(token)
            ),
            "subject_tenant_id",
        )
    # A key holder reads its own tenant (named or not), never another.
    holder = keys[1].secret
    assert await spend(holder, agent_run_id=run) == [("USD", 2_000_000)]
    assert await spend(holder, agent_run_id=run, subject_tenant_id=tenants[1]) == [
        ("USD", 2_000_000)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await spend(holder, agent_run_id=run, subject_tenant_id=tenants[0])
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
