"""The agent's side: guard() raises BudgetExhausted naming the approval request its denial
opened, and wait_for_approval waits (bounded) for a human's decision; async and sync clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from keyleash.client import BudgetExhausted, MeteringClient, SyncVaultClient, VaultClient, guard
from keyleash.vault.v1 import vault_pb2
from tests.approvals.approval_helpers import mint_capped
from tests.conftest import ADMIN_TOKEN, System
from tests.integration.vault_helpers import usd

PENDING, APPROVED = vault_pb2.Approval.STATE_PENDING, vault_pb2.Approval.STATE_APPROVED


@pytest.fixture
def stub(vault: Any) -> Any:
    """The raw generated stub (the suite's `vault` fixture), for the shared mint helper."""
    return vault


@pytest.fixture
async def agent_clients(system: System) -> AsyncIterator[tuple[VaultClient, MeteringClient]]:
    async with (
        VaultClient(system.vault_address) as vault,
        MeteringClient(system.metering_address) as metering,
    ):
        yield vault, metering


async def test_guard_names_the_approval_and_the_agent_waits_for_the_decision(
    agent_clients: tuple[VaultClient, MeteringClient], system: System, stub: Any, tenant: str
) -> None:
    vault, metering = agent_clients
    key = await mint_capped(stub, tenant, "1")
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as admin:
        with pytest.raises(BudgetExhausted) as caught:
            async with guard(
                vault, metering, key=key.secret, scope="api.call", estimated_cost=("USD", 2_000_000)
            ):
                pytest.fail("the block must not run")
        error = caught.value
        assert error.approval.startswith(f"tenants/{tenant}/approvals/")
        assert error.approval.endswith(error.approval_id) and error.approval_id.startswith("ap_")

        # Bounded: nobody decided, so the wait ends with the request still pending.
        waited = await vault.wait_for_approval(
            error.approval, wait=0.3, poll_every=0.1, token=key.secret
        )
        assert waited.state == PENDING

        waiting = asyncio.create_task(
            vault.wait_for_approval(error.approval, wait=60, poll_every=0.05, token=key.secret)
        )
        await admin.approve_approval(error.approval, reason="go on")
        decided = await waiting
        assert decided.state == APPROVED and decided.granted.micros == 1_000_000

    # The call that was denied now passes (cap 1 + 1 granted).
    async with guard(
        vault, metering, key=key.secret, scope="api.call", estimated_cost=("USD", 2_000_000)
    ) as handle:
        handle.actual_cost = ("USD", 2_000_000)
    assert handle.charge is not None


async def test_the_sync_client_waits_too(system: System, stub: Any, tenant: str) -> None:
    key = await mint_capped(stub, tenant, "1", on_denial=False)
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as admin:
        opened = await admin.create_approval(
            key=key.key.name, quota="spend/calendar_day", amount=usd("0.5")
        )

    def wait_sync() -> vault_pb2.Approval:
        with SyncVaultClient(system.vault_address, token=ADMIN_TOKEN) as sync:
            return sync.wait_for_approval(opened.name, wait=0.2, poll_every=0.05)

    assert (await asyncio.to_thread(wait_sync)).state == PENDING
