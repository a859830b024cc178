"""Issue #14, defects 3 and 4: a threshold set below today's spend throttles whichever way the
spend was recorded, and GetTenant reports today's spend with or without a threshold."""

from __future__ import annotations

from typing import Any

from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer

from .test_metering import ALLOW, DENY, admin, authorize, charge, mint, usd


async def _set_daily(metering: Any, tenant: str, amount: str) -> Any:
    return await metering.SetTenantBudget(
        metering_pb2.SetTenantBudgetRequest(tenant_id=tenant, daily_threshold=usd(amount)),
        metadata=bearer(admin()),
    )


async def _guarded_spend(vault: Any, metering: Any, tenant: str, amount: str) -> Any:
    minted = await mint(vault, admin(), tenant)
    allowed = await authorize(vault, minted.secret, amount)
    assert allowed.decision == ALLOW and allowed.reservation_id
    await charge(metering, minted.key.key_id, amount, reservation_id=allowed.reservation_id)
    return minted


async def test_threshold_below_spend_made_through_holds_throttles(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await _guarded_spend(vault, metering, tenant, "2.40")
    budget = await _set_daily(metering, tenant, "2.00")
    assert budget.throttled and budget.spend_today.micros == 2_400_000
    denied = await authorize(vault, minted.secret, "0.10")
    assert (denied.decision, denied.reason) == (DENY, vault_pb2.DENY_REASON_TENANT_THROTTLED)


async def test_threshold_below_spend_made_by_bare_charges_throttles(
    vault: Any, metering: Any, tenant: str
) -> None:
    minted = await mint(vault, admin(), tenant)
    await charge(metering, minted.key.key_id, "2.40")
    budget = await _set_daily(metering, tenant, "2.00")
    assert budget.throttled
    denied = await authorize(vault, minted.secret, "0.10")
    assert (denied.decision, denied.reason) == (DENY, vault_pb2.DENY_REASON_TENANT_THROTTLED)


async def test_get_tenant_reports_spend_today_without_a_threshold(
    vault: Any, metering: Any, tenant: str
) -> None:
    await _guarded_spend(vault, metering, tenant, "1.25")
    seen = await metering.GetTenant(
        metering_pb2.GetTenantRequest(tenant_id=tenant), metadata=bearer(admin())
    )
    assert not seen.HasField("daily_threshold") or seen.daily_threshold.micros == 0
    assert (seen.spend_today.currency_code, seen.spend_today.micros) == ("USD", 1_250_000)


async def test_a_new_threshold_below_spend_throttles_after_an_earlier_lift_today(
    vault: Any, metering: Any, tenant: str
) -> None:
    """The CLI trial's path: the demo crossed 2.00, was lifted (threshold 50.00); an operator
    then set 2.00 again below the 2.40 spent. The lift was for the old threshold."""
    await _set_daily(metering, tenant, "1.00")
    minted = await _guarded_spend(vault, metering, tenant, "2.40")
    lifted = await metering.SetTenantBudget(
        metering_pb2.SetTenantBudgetRequest(
            tenant_id=tenant, daily_threshold=usd("50.00"), lift_throttle=True
        ),
        metadata=bearer(admin()),
    )
    assert not lifted.throttled
    assert (await authorize(vault, minted.secret, "0.10")).decision == ALLOW
    budget = await _set_daily(metering, tenant, "2.00")
    assert budget.throttled
    denied = await authorize(vault, minted.secret, "0.10")
    assert (denied.decision, denied.reason) == (DENY, vault_pb2.DENY_REASON_TENANT_THROTTLED)
