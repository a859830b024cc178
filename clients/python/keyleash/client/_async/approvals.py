"""The approval RPCs of VaultService, mixed into VaultClient, and the agent's bounded wait for a
human's decision (`wait_for_approval`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from keyleash.client._base import AsyncClientBase, named_request
from keyleash.client._transport import build_request
from keyleash.vault.v1 import vault_pb2 as V

# The states a request leaves pending for; wait_for_approval returns on any of them.
DECIDED_STATES = frozenset(
    {V.Approval.STATE_APPROVED, V.Approval.STATE_DENIED, V.Approval.STATE_EXPIRED}
)
MAX_WAIT_SECONDS = 3600.0


class ApprovalCalls(AsyncClientBase):
    """CreateApproval ... DenyApproval (same conventions as the other VaultClient methods)."""

    async def create_approval(
        self,
        request: V.CreateApprovalRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Any,
    ) -> V.Approval:
        """Asks for a temporary raise of one cap (quota, amount, reason, agent_run_id)."""
        built = build_request(V.CreateApprovalRequest, request, fields)
        return await self._invoker.unary("CreateApproval", built, V.Approval, timeout, token)

    async def get_approval(
        self,
        request: V.GetApprovalRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.Approval:
        """One approval request, by request or name "tenants/{t}/approvals/{id}"."""
        built = named_request(V.GetApprovalRequest, request, {})
        return await self._invoker.unary("GetApproval", built, V.Approval, timeout, token)

    async def iter_approvals(
        self,
        request: V.ListApprovalsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Any,
    ) -> AsyncIterator[V.Approval]:
        """A tenant's approval requests, newest first, page after page."""
        built = build_request(V.ListApprovalsRequest, request, fields)
        while True:
            page = await self._invoker.unary(
                "ListApprovals", built, V.ListApprovalsResponse, timeout, token
            )
            for approval in page.approvals:
                yield approval
            if not page.next_page_token:
                return
            built.page_token = page.next_page_token

    async def approve_approval(
        self,
        request: V.ApproveApprovalRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Any,
    ) -> V.Approval:
        """Approves a pending request (by request or name; amount, reason). Never retried."""
        built = named_request(V.ApproveApprovalRequest, request, fields)
        return await self._invoker.unary("ApproveApproval", built, V.Approval, timeout, token)

    async def deny_approval(
        self,
        request: V.DenyApprovalRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Any,
    ) -> V.Approval:
        """Denies a pending request (by request or name; reason). Never retried."""
        built = named_request(V.DenyApprovalRequest, request, fields)
        return await self._invoker.unary("DenyApproval", built, V.Approval, timeout, token)

    async def wait_for_approval(
        self,
        name: str,
        *,
        wait: float,
        poll_every: float = 2.0,
        token: str | None = None,
    ) -> V.Approval:
        """Polls a request until it is decided (approved, denied, expired) or `wait` seconds
        (at most an hour) passed; returns it as last read, so a still-pending request after
        the wait comes back with STATE_PENDING. `error.approval` of a BudgetExhausted names it.
        """
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT_SECONDS)
        while True:
            approval = await self.get_approval(name, token=token)
            left = deadline - time.monotonic()
            if approval.state in DECIDED_STATES or left <= 0:
                return approval
            await self._pause(min(max(poll_every, 0.05), left))
