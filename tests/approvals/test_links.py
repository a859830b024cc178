"""One-click links through the approvals endpoint (keyleash_approvals) in front of a vault on a
clock the test moves: a link works once, until it expires, only for what it was signed for."""

from __future__ import annotations

import aiohttp
import grpc
import pytest

from keyleash.vault.v1 import vault_pb2
from keyleash_core.approval_links import LinkAction, sign_link
from tests.approvals.approval_helpers import ALLOW, DENY, mint_capped, spend
from tests.approvals.conftest import ClockedVault
from tests.conftest import SERVICE_TOKEN, bearer
from tests.integration.vault_helpers import PEPPER, admin_token

HOUR_MS = 3600 * 1000
JSON = {"Accept": "application/json"}


async def _denied_request(clocked_vault: ClockedVault, tenant: str) -> tuple[str, str]:
    """A key at its daily cap of 10 USD and the approval request its denial opened."""
    vault = clocked_vault.stub
    key = await mint_capped(vault, tenant, "10")
    assert (await spend(vault, key.secret, "10")).decision == ALLOW
    denied = await spend(vault, key.secret, "4")
    assert denied.decision == DENY and denied.approval
    return key.secret, denied.approval


def _link(
    clocked_vault: ClockedVault, name: str, action: LinkAction, pepper: bytes = PEPPER
) -> str:
    return sign_link(pepper, name, action, clocked_vault.clock.now_ms() + HOUR_MS)


async def test_cap_hit_approve_by_link_next_call_passes_grant_gone_at_reset(
    clocked_vault: ClockedVault, tenant: str, links_url: str
) -> None:
    vault, clock = clocked_vault.stub, clocked_vault.clock
    secret, name = await _denied_request(clocked_vault, tenant)
    token = _link(clocked_vault, name, LinkAction.APPROVE)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{links_url}/approvals/approve", params={"token": token}) as page:
            assert page.status == 200
            text = await page.text()
            assert name in text and 'method="post"' in text
        # Fetching the link decided nothing (link scanners and unfurlers fetch links).
        still = await vault.GetApproval(
            vault_pb2.GetApprovalRequest(name=name), metadata=bearer(admin_token())
        )
        assert still.state == vault_pb2.Approval.STATE_PENDING
        form = {"token": token, "reason": "ship it"}
        async with http.post(f"{links_url}/approvals/approve", data=form) as done:
            assert done.status == 200 and "approved" in await done.text()
    approval = await vault.GetApproval(
        vault_pb2.GetApprovalRequest(name=name), metadata=bearer(admin_token())
    )
    assert approval.state == vault_pb2.Approval.STATE_APPROVED
    assert approval.decided_by.startswith("link:") and approval.decision_reason == "ship it"
    assert (await spend(vault, secret, "4")).decision == ALLOW
    assert (await spend(vault, secret, "1")).decision == DENY  # 14 of 10 + 4
    clock.next_day()
    assert (await spend(vault, secret, "10")).decision == ALLOW
    reset = await spend(vault, secret, "4")
    assert reset.decision == DENY and reset.quotas[0].limit == 10_000_000


async def test_a_replayed_link_is_refused(
    clocked_vault: ClockedVault, tenant: str, links_url: str
) -> None:
    _secret, name = await _denied_request(clocked_vault, tenant)
    token = _link(clocked_vault, name, LinkAction.DENY)
    async with aiohttp.ClientSession(headers=JSON) as http:
        url = f"{links_url}/approvals/deny"
        async with http.post(url, data={"token": token}) as first:
            assert first.status == 200
            assert (await first.json())["approval"]["state"] == "denied"
        async with http.post(url, data={"token": token}) as replay:
            assert replay.status == 403
            assert (await replay.json())["error"]["code"] == "LINK_REFUSED"


async def test_an_expired_link_is_refused(
    clocked_vault: ClockedVault, tenant: str, links_url: str
) -> None:
    _secret, name = await _denied_request(clocked_vault, tenant)
    token = _link(clocked_vault, name, LinkAction.APPROVE)
    clocked_vault.clock.now += HOUR_MS
    async with aiohttp.ClientSession(headers=JSON) as http:
        async with http.post(f"{links_url}/approvals/approve", data={"token": token}) as late:
            assert late.status == 403
            assert "expired" in (await late.json())["error"]["message"]


async def test_forged_or_misused_links_are_refused(
    clocked_vault: ClockedVault, tenant: str, links_url: str
) -> None:
    _secret, name = await _denied_request(clocked_vault, tenant)
    forged = _link(clocked_vault, name, LinkAction.APPROVE, pepper=b"another-pepper")
    deny_link = _link(clocked_vault, name, LinkAction.DENY)
    async with aiohttp.ClientSession(headers=JSON) as http:
        async with http.post(f"{links_url}/approvals/approve", data={"token": forged}) as bad:
            assert bad.status == 403
        async with http.post(f"{links_url}/approvals/approve", data={"token": deny_link}) as bad:
            assert bad.status == 403  # a deny link cannot approve
        async with http.post(f"{links_url}/approvals/approve", data={"token": "x"}) as bad:
            assert bad.status == 400
    approval = await clocked_vault.stub.GetApproval(
        vault_pb2.GetApprovalRequest(name=name), metadata=bearer(admin_token())
    )
    assert approval.state == vault_pb2.Approval.STATE_PENDING


async def test_a_service_credential_decides_only_with_a_link(
    clocked_vault: ClockedVault, tenant: str
) -> None:
    _secret, name = await _denied_request(clocked_vault, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await clocked_vault.stub.ApproveApproval(
            vault_pb2.ApproveApprovalRequest(name=name), metadata=bearer(SERVICE_TOKEN)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
