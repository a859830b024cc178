"""Issue #14, defect 2: every Money of every RPC takes only an ISO 4217 code from the shipped
list (keyleash_core/currencies.csv); an unknown code is INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_core.money import currency_exponents, minor_unit_exponent
from tests.conftest import bearer

from .test_metering import admin, bad_fields, mint, service

UNKNOWN = ("USX", "ABC", "XTS", "XXX")


def bogus(code: str) -> money_pb2.Money:
    return money_pb2.Money(currency_code=code, micros=10_000)


async def refused(call: Any, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_fields(caught.value)


def test_the_shipped_list_has_the_exponents_a_gateway_needs() -> None:
    assert minor_unit_exponent("USD") == 2
    assert minor_unit_exponent("JPY") == 0
    assert minor_unit_exponent("KWD") == 3
    assert len(currency_exponents()) > 150
    assert not set(UNKNOWN) & set(currency_exponents())


@pytest.mark.parametrize("code", UNKNOWN)
@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (
            {"spend_caps": [vault_pb2.SpendCap(window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY)]},
            "policy.spend_caps[0].limit.currency_code",
        ),
        ({"max_cost_per_call": None}, "policy.max_cost_per_call.currency_code"),
        ({"run_spend_cap": None}, "policy.run_spend_cap.currency_code"),
    ],
)
async def test_mint_key_refuses_an_unknown_code_in_any_cap(
    vault: Any, tenant: str, code: str, policy: dict[str, Any], field: str
) -> None:
    built = vault_pb2.Policy()
    if "spend_caps" in policy:
        built.spend_caps.add(limit=bogus(code), window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY)
    else:
        getattr(built, next(iter(policy))).CopyFrom(bogus(code))
    request = vault_pb2.MintKeyRequest(
        tenant_id=tenant, agent_id="a", label="l", scopes=["api.call"], policy=built
    )
    await refused(vault.MintKey(request, metadata=bearer(admin())), field)


async def test_update_key_policy_refuses_an_unknown_code(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin(), tenant)
    request = vault_pb2.UpdateKeyPolicyRequest(name=minted.key.name)
    request.policy.spend_caps.add(limit=bogus("USX"), window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY)
    request.update_mask.paths.append("spend_caps")
    await refused(
        vault.UpdateKeyPolicy(request, metadata=bearer(admin())),
        "policy.spend_caps[0].limit.currency_code",
    )


async def test_authorize_refuses_an_unknown_estimated_cost_code(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin(), tenant)
    request = vault_pb2.AuthorizeRequest(
        key=minted.secret, scope="api.call", estimated_cost=bogus("USX")
    )
    await refused(
        vault.Authorize(request, metadata=bearer(minted.secret)), "estimated_cost.currency_code"
    )


async def test_charge_refuses_an_unknown_amount_code(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    request = metering_pb2.ChargeRequest(
        request_id="cur-" + tenant, key_id=minted.key.key_id, amount=bogus("USX")
    )
    await refused(metering.Charge(request, metadata=bearer(service())), "amount.currency_code")


async def test_set_tenant_budget_refuses_an_unknown_threshold_code(
    metering: Any, tenant: str
) -> None:
    request = metering_pb2.SetTenantBudgetRequest(tenant_id=tenant, daily_threshold=bogus("USX"))
    await refused(
        metering.SetTenantBudget(request, metadata=bearer(admin())),
        "daily_threshold.currency_code",
    )


async def test_a_known_non_usd_code_is_accepted(vault: Any, tenant: str) -> None:
    request = vault_pb2.MintKeyRequest(
        tenant_id=tenant,
        agent_id="a",
        label="l",
        scopes=["api.call"],
        policy=vault_pb2.Policy(max_cost_per_call=bogus("JPY")),
    )
    minted = await vault.MintKey(request, metadata=bearer(admin()))
    assert minted.key.policy.max_cost_per_call.currency_code == "JPY"
