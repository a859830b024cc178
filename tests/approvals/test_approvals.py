"""Approvals over real gRPC, Redis and Postgres: a budget denial opens a request, an approval
raises the cap for the rest of the window only, and only those who may decide can."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from keyleash.vault.v1 import vault_pb2
from tests.approvals.approval_helpers import ALLOW, DENY, WEEK, mint_capped, spend
from tests.approvals.conftest import ClockedVault
from tests.conftest import bearer
from tests.integration.vault_helpers import admin_token, usd

APPROVED = vault_pb2.Approval.STATE_APPROVED


async def test_budget_denial_opens_one_request_and_approval_lasts_the_day(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault, clock = clocked_vault.stub, clocked_vault.clock
    key = await mint_capped(vault, tenant, "10")
    assert (await spend(vault, key.secret, "6")).decision == ALLOW
    denied = await spend(vault, key.secret, "6")
    assert denied.decision == DENY
    assert denied.reason == vault_pb2.DENY_REASON_SPEND_CAP_EXCEEDED
    assert denied.approval.startswith(f"tenants/{tenant}/approvals/ap_")
    again = await spend(vault, key.secret, "6")
    assert again.approval == denied.approval  # one open request per cap and window

    pending = await vault.GetApproval(
        vault_pb2.GetApprovalRequest(name=denied.approval), metadata=bearer(admin_token())
    )
    assert pending.state == vault_pb2.Approval.STATE_PENDING
    assert (pending.quota, pending.amount.micros) == ("spend/calendar_day", 2_000_000)
    assert pending.capped_key == key.key.name and pending.requested_by == "denial"

    approved = await vault.ApproveApproval(
        vault_pb2.ApproveApprovalRequest(name=denied.approval, amount=usd("5"), reason="demo day"),
        metadata=bearer(admin_token()),
    )
    assert approved.state == APPROVED and approved.granted.micros == 5_000_000
    assert approved.decided_by.startswith("admin:")
    allowed = await spend(vault, key.secret, "6")
    assert allowed.decision == ALLOW  # 12 of 15
    over = await spend(vault, key.secret, "4")
    assert over.decision == DENY and over.quotas[0].limit == 15_000_000

    clock.next_day()
    assert (await spend(vault, key.secret, "10")).decision == ALLOW
    gone = await spend(vault, key.secret, "1")
    assert gone.decision == DENY and gone.quotas[0].limit == 10_000_000


async def test_concurrent_calls_never_exceed_cap_plus_grant(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault = clocked_vault.stub
    key = await mint_capped(vault, tenant, "10")
    denied = None
    while denied is None:
        reply = await spend(vault, key.secret, "1")
        denied = reply if reply.decision == DENY else None
    await vault.ApproveApproval(
        vault_pb2.ApproveApprovalRequest(name=denied.approval, amount=usd("25")),
        metadata=bearer(admin_token()),
    )
    replies = await asyncio.gather(*(spend(vault, key.secret, "1") for _ in range(100)))
    assert sum(r.decision == ALLOW for r in replies) == 25


async def test_the_requesting_key_cannot_approve_itself_an_ancestor_can(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault = clocked_vault.stub
    parent = await mint_capped(vault, tenant, "100", on_denial=False)
    child = await mint_capped(vault, tenant, "10", parent_secret=parent.secret)
    await spend(vault, child.secret, "10")
    denied = await spend(vault, child.secret, "1")
    request = vault_pb2.ApproveApprovalRequest(name=denied.approval)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await vault.ApproveApproval(request, metadata=bearer(child.secret))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as deny_refused:
        await vault.DenyApproval(
            vault_pb2.DenyApprovalRequest(name=denied.approval), metadata=bearer(child.secret)
        )
    assert deny_refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    approved = await vault.ApproveApproval(request, metadata=bearer(parent.secret))
    assert approved.state == APPROVED and approved.decided_by.startswith("key:")
    assert (await spend(vault, child.secret, "1")).decision == ALLOW
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await vault.ApproveApproval(request, metadata=bearer(admin_token()))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_grant_never_lets_a_child_exceed_an_unraised_ancestor(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault = clocked_vault.stub
    parent = await mint_capped(vault, tenant, "15", on_denial=False)
    child = await mint_capped(vault, tenant, "10", parent_secret=parent.secret)
    await spend(vault, child.secret, "10")
    denied = await spend(vault, child.secret, "1")
    await vault.ApproveApproval(
        vault_pb2.ApproveApprovalRequest(name=denied.approval, amount=usd("100")),
        metadata=bearer(admin_token()),
    )
    assert (await spend(vault, child.secret, "5")).decision == ALLOW
    blocked = await spend(vault, child.secret, "1")
    assert blocked.decision == DENY
    assert blocked.quotas[0].subject == parent.key.name
    assert blocked.quotas[0].limit == 15_000_000


async def test_deny_is_recorded_in_the_request_and_the_key_history(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault = clocked_vault.stub
    key = await mint_capped(vault, tenant, "1")
    denied = await spend(vault, key.secret, "2")
    result = await vault.DenyApproval(
        vault_pb2.DenyApprovalRequest(name=denied.approval, reason="not this month"),
        metadata=bearer(admin_token()),
    )
    assert result.state == vault_pb2.Approval.STATE_DENIED
    assert result.decision_reason == "not this month" and result.HasField("decide_time")
    again = await spend(vault, key.secret, "2")
    assert again.decision == DENY and again.approval == denied.approval  # not asked again
    events = await vault.ListKeyEvents(
        vault_pb2.ListKeyEventsRequest(name=key.key.name), metadata=bearer(admin_token())
    )
    steps = [(e.action, e.reason) for e in events.events]
    assert [a for a, _ in steps] == ["mint", "approval_requested", "approval_denied"]
    assert ("approval_denied", "not this month") in steps
    details = json.loads(events.events[-1].details_json)
    assert details["approval"] == denied.approval


async def test_explicit_request_lists_per_tenant_and_expires(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault, clock = clocked_vault.stub, clocked_vault.clock
    key = await mint_capped(vault, tenant, "10", on_denial=False)
    opened = await vault.CreateApproval(
        vault_pb2.CreateApprovalRequest(
            quota="spend/calendar_day", amount=usd("3"), reason="one more report"
        ),
        metadata=bearer(key.secret),
    )
    assert opened.requested_by.startswith("key:") and opened.reason == "one more report"
    listed = await vault.ListApprovals(
        vault_pb2.ListApprovalsRequest(tenant_id=tenant, state=vault_pb2.Approval.STATE_PENDING),
        metadata=bearer(admin_token()),
    )
    assert [a.name for a in listed.approvals] == [opened.name]
    clock.next_day()
    expired = await vault.GetApproval(
        vault_pb2.GetApprovalRequest(name=opened.name), metadata=bearer(key.secret)
    )
    assert expired.state == vault_pb2.Approval.STATE_EXPIRED and expired.decided_by == "expiry"
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await vault.ApproveApproval(
            vault_pb2.ApproveApprovalRequest(name=opened.name), metadata=bearer(admin_token())
        )
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_create_approval_names_a_cap_the_key_has(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault = clocked_vault.stub
    key = await mint_capped(vault, tenant, "10")
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await vault.CreateApproval(
            vault_pb2.CreateApprovalRequest(quota="spend/calendar_month", amount=usd("3")),
            metadata=bearer(key.secret),
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_grant_survives_a_redis_flush(
    clocked_vault: ClockedVault, tenant: str, redis_client: Any
) -> None:
    vault = clocked_vault.stub
    key = await mint_capped(vault, tenant, "10")
    await spend(vault, key.secret, "10")
    denied = await spend(vault, key.secret, "5")
    await vault.ApproveApproval(
        vault_pb2.ApproveApprovalRequest(name=denied.approval), metadata=bearer(admin_token())
    )
    names = [n async for n in redis_client.scan_iter(match=f"kl:{{{tenant}}}:*")]
    assert any(b":grant:" in n for n in names)
    await redis_client.delete(*names)
    # Holds are not billing events, so the rebuilt window is empty; the grant is rebuilt from
    # the approvals table: the cap reads 10 + 5.
    after = await spend(vault, key.secret, "5")
    assert after.decision == ALLOW and after.quotas[0].limit == 15_000_000


async def test_a_run_cap_grant_is_for_that_run_only(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    vault = clocked_vault.stub
    key = await vault.MintKey(
        vault_pb2.MintKeyRequest(
            tenant_id=tenant, agent_id="agent", scopes=["api.call"], ttl=WEEK,
            policy=vault_pb2.Policy(run_spend_cap=usd("2"), approval_on_denial=True),
        ),
        metadata=bearer(admin_token()),
    )  # fmt: skip
    assert (await spend(vault, key.secret, "2", run="run-a")).decision == ALLOW
    denied = await spend(vault, key.secret, "1", run="run-a")
    assert denied.reason == vault_pb2.DENY_REASON_RUN_CAP_EXCEEDED and denied.approval
    approved = await vault.ApproveApproval(
        vault_pb2.ApproveApprovalRequest(name=denied.approval), metadata=bearer(admin_token())
    )
    assert (approved.quota, approved.window_id, approved.agent_run_id) == ("run", "run-a", "run-a")
    assert not approved.HasField("grant_end_time")  # lasts as long as the run's counter
    assert (await spend(vault, key.secret, "1", run="run-a")).decision == ALLOW
    assert (await spend(vault, key.secret, "2", run="run-b")).decision == ALLOW
    other = await spend(vault, key.secret, "1", run="run-b")
    assert other.decision == DENY and other.quotas[0].limit == 2_000_000


async def test_a_retried_approval_restores_a_grant_redis_missed(
    clocked_vault: ClockedVault, tenant: str, redis_client: Any
) -> None:
    vault = clocked_vault.stub
    key = await mint_capped(vault, tenant, "10")
    await spend(vault, key.secret, "10")
    denied = await spend(vault, key.secret, "5")
    request = vault_pb2.ApproveApprovalRequest(name=denied.approval)
    await vault.ApproveApproval(request, metadata=bearer(admin_token()))
    # As if the vault died after committing the approval and before telling Redis.
    [grant] = [n async for n in redis_client.scan_iter(match=f"kl:{{{tenant}}}:grant:*")]
    await redis_client.delete(grant)
    assert (await spend(vault, key.secret, "5")).decision == DENY
    for _retry in range(2):  # applied once however often it is retried
        with pytest.raises(grpc.aio.AioRpcError) as decided:
            await vault.ApproveApproval(request, metadata=bearer(admin_token()))
        assert decided.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await spend(vault, key.secret, "5")).decision == ALLOW
    assert (await spend(vault, key.secret, "1")).decision == DENY


async def test_key_usage_shows_the_raised_cap(clocked_vault: ClockedVault, tenant: str) -> None:
    vault = clocked_vault.stub
    key = await mint_capped(vault, tenant, "10")
    await spend(vault, key.secret, "10")
    denied = await spend(vault, key.secret, "5")
    await vault.ApproveApproval(
        vault_pb2.ApproveApprovalRequest(name=denied.approval), metadata=bearer(admin_token())
    )
    usage = await vault.GetKeyUsage(
        vault_pb2.GetKeyUsageRequest(name=key.key.name), metadata=bearer(admin_token())
    )
    [day] = [q for q in usage.keys[0].quotas if q.quota == "spend/calendar_day"]
    assert (day.limit, day.used, day.remaining) == (15_000_000, 10_000_000, 5_000_000)
