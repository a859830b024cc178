"""The approval RPCs of VaultService: proto <-> use case, nothing else.

A mixin of VaultServicer (servicer.py), as ConnectionRpcs is.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from keyleash.vault.v1 import vault_pb2
from keyleash_core.approval_links import LinkAction
from keyleash_core.auth import Credential
from keyleash_core.errors import InvalidArgument
from keyleash_core.money import Money
from keyleash_core.validation import money, tenant_id, text
from keyleash_core.wire import money_to_proto
from vault_service.domain.approvals import Approval, ApprovalState
from vault_service.usecases.approvals import ApprovalAsk, ApprovalDesk
from vault_service.usecases.decide_approval import ApprovalDecider, Verdict

Context: TypeAlias = Any

_STATES = {
    ApprovalState.PENDING: vault_pb2.Approval.STATE_PENDING,
    ApprovalState.APPROVED: vault_pb2.Approval.STATE_APPROVED,
    ApprovalState.DENIED: vault_pb2.Approval.STATE_DENIED,
    ApprovalState.EXPIRED: vault_pb2.Approval.STATE_EXPIRED,
}
_STATE_FILTERS = {v: k.value for k, v in _STATES.items()} | {
    vault_pb2.Approval.STATE_UNSPECIFIED: ""
}


def approval_to_proto(a: Approval) -> vault_pb2.Approval:
    out = vault_pb2.Approval(
        name=a.name, approval_id=a.approval_id, tenant_id=a.tenant_id,
        key=f"tenants/{a.tenant_id}/keys/{a.key_id}",
        capped_key=f"tenants/{a.tenant_id}/keys/{a.capped_key_id}",
        quota=a.quota, agent_run_id=a.agent_run_id,
        amount=money_to_proto(Money(a.currency, a.amount_micros)), reason=a.reason,
        state=_STATES[a.state], decided_by=a.decided_by, decision_reason=a.decision_reason,
        requested_by=a.requested_by, window_id=a.window_id,
    )  # fmt: skip
    if a.granted_micros is not None:
        out.granted.CopyFrom(money_to_proto(Money(a.currency, a.granted_micros)))
    out.create_time.FromMilliseconds(a.create_ms)
    out.expire_time.FromMilliseconds(a.expire_ms)
    if a.decide_ms is not None:
        out.decide_time.FromMilliseconds(a.decide_ms)
    if a.grant_end_ms is not None:
        out.grant_end_time.FromMilliseconds(a.grant_end_ms)
    return out


def _optional_key(value: str, path: str) -> str:
    return text(value, path, limit=300)


class ApprovalRpcs:
    """CreateApproval ... DenyApproval; needs `_approvals`, `_approval_decider`, `_credential`."""

    _approvals: ApprovalDesk
    _approval_decider: ApprovalDecider

    def _credential(self, context: Context) -> Credential:
        raise NotImplementedError

    async def CreateApproval(
        self, request: vault_pb2.CreateApprovalRequest, context: Context
    ) -> vault_pb2.Approval:
        credential = self._credential(context)
        ask = ApprovalAsk(
            key=_optional_key(request.key, "key"),
            capped_key=_optional_key(request.capped_key, "capped_key"),
            quota=text(request.quota, "quota", required=True, limit=64),
            amount=money(request.amount, "amount"),
            reason=text(request.reason, "reason", limit=1000),
            agent_run_id=text(request.agent_run_id, "agent_run_id", limit=256),
        )
        return approval_to_proto(await self._approvals.create(credential, ask))

    async def GetApproval(
        self, request: vault_pb2.GetApprovalRequest, context: Context
    ) -> vault_pb2.Approval:
        credential = self._credential(context)
        name = text(request.name, "name", required=True, limit=300)
        return approval_to_proto(await self._approvals.get(credential, name))

    async def ListApprovals(
        self, request: vault_pb2.ListApprovalsRequest, context: Context
    ) -> vault_pb2.ListApprovalsResponse:
        credential = self._credential(context)
        if request.state not in _STATE_FILTERS:
            raise InvalidArgument("state", "one of the Approval.STATE_* values")
        if not 0 <= request.page_size <= 1000:
            raise InvalidArgument("page_size", "between 0 and 1000")
        rows, token = await self._approvals.list(
            credential,
            tenant_id(request.tenant_id),
            _STATE_FILTERS[request.state],
            request.page_size,
            text(request.page_token, "page_token", limit=1000),
        )
        return vault_pb2.ListApprovalsResponse(
            approvals=[approval_to_proto(a) for a in rows], next_page_token=token
        )

    async def ApproveApproval(
        self, request: vault_pb2.ApproveApprovalRequest, context: Context
    ) -> vault_pb2.Approval:
        credential = self._credential(context)
        verdict = Verdict(
            name=text(request.name, "name", required=True, limit=300),
            action=LinkAction.APPROVE,
            reason=text(request.reason, "reason", limit=1000),
            amount=money(request.amount, "amount") if request.HasField("amount") else None,
            link_token=text(request.link_token, "link_token", limit=2000),
        )
        return approval_to_proto(await self._approval_decider.decide(credential, verdict))

    async def DenyApproval(
        self, request: vault_pb2.DenyApprovalRequest, context: Context
    ) -> vault_pb2.Approval:
        credential = self._credential(context)
        verdict = Verdict(
            name=text(request.name, "name", required=True, limit=300),
            action=LinkAction.DENY,
            reason=text(request.reason, "reason", limit=1000),
            link_token=text(request.link_token, "link_token", limit=2000),
        )
        return approval_to_proto(await self._approval_decider.decide(credential, verdict))
