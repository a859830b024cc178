"""Approval requests: opening one (by RPC, or by a budget denial of a key whose policy says
so), reading and listing them, and finding them expired. Deciding them: decide_approval.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from keyleash_core import page_tokens
from keyleash_core.auth import ADMIN, KEY, SERVICE, Credential
from keyleash_core.clock import Clock
from keyleash_core.errors import InvalidArgument, KeyleashError, NotFound, PermissionDenied
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.money import Money
from keyleash_core.reasons import DenyReason, ErrorReason
from vault_service.domain.approvals import (
    Approval,
    ApprovalState,
    UnknownCap,
    cap_target,
    new_approval_id,
    parse_approval_name,
    pending_expire_ms,
    shortfall,
)
from vault_service.domain.checks import CallRequest
from vault_service.domain.decision import Quota
from vault_service.store.approvals import ApprovalStore, Decided
from vault_service.usecases.permissions import Permissions

log = logging.getLogger(__name__)
BUDGET_DENIALS = (DenyReason.SPEND_CAP_EXCEEDED, DenyReason.RUN_CAP_EXCEEDED)
DENIAL_ACTOR = "denial"


@dataclass(frozen=True)
class ApprovalAsk:
    """What CreateApproval asks: `key` and `capped_key` are key names ("" = the caller)."""

    key: str
    capped_key: str
    quota: str
    amount: Money
    reason: str
    agent_run_id: str


class ApprovalDesk:
    """Opens, reads and lists approval requests. One per process."""

    def __init__(self, store: ApprovalStore, permissions: Permissions, clock: Clock) -> None:
        self.store = store
        self.permissions = permissions
        self.clock = clock

    async def create(self, credential: Credential, ask: ApprovalAsk) -> Approval:
        if credential.kind not in (ADMIN, KEY):
            raise PermissionDenied("only an admin or a key holder opens approval requests")
        if ask.key:
            key = await self.permissions.key_by_name(credential, ask.key, allow_self=True)
        elif credential.kind == KEY:
            key = (await self.permissions.caller_chain(credential))[0]
        else:
            raise InvalidArgument("key", "an admin names the key")
        capped = key
        if ask.capped_key:
            capped = await self.permissions.key_by_name(
                Credential(ADMIN, "", credential.actor), ask.capped_key, allow_self=True
            )
            if capped.key_id not in key.key_path:
                raise InvalidArgument("capped_key", "the key itself or one of its ancestors")
        if ask.amount.micros <= 0:
            raise InvalidArgument("amount", "a positive amount")
        return await self._open(key, capped, ask, credential.actor)

    async def _open(
        self, key: KeyRecord, capped: KeyRecord, ask: ApprovalAsk, actor: str
    ) -> Approval:
        now = self.clock.now_ms()
        try:
            target = cap_target(capped, ask.quota, ask.agent_run_id, now)
        except UnknownCap as error:
            raise InvalidArgument("quota", str(error)) from None
        if target.currency != ask.amount.currency:
            raise InvalidArgument("amount", f"in the cap's currency, {target.currency}")
        approval = Approval(
            approval_id=new_approval_id(), tenant_id=key.tenant_id, key_id=key.key_id,
            capped_key_id=capped.key_id, quota=ask.quota, currency=target.currency,
            window_id=target.grant.window_id,
            agent_run_id=ask.agent_run_id if target.window is None else "",
            amount_micros=ask.amount.micros, reason=ask.reason, state=ApprovalState.PENDING,
            granted_micros=None, create_ms=now, expire_ms=pending_expire_ms(now, target.grant),
            decide_ms=None, decided_by="", decision_reason="",
            grant_end_ms=target.grant.end_ms or None, requested_by=actor,
        )  # fmt: skip
        opened, _new = await self.store.open(approval, after_denial=actor == DENIAL_ACTOR)
        return opened

    async def open_for_denial(
        self, chain: list[KeyRecord], call: CallRequest, reason: DenyReason, quota: Quota
    ) -> str:
        """The approval opened (or pending) for a budget denial of chain[0], by its name; ""
        when the policy does not ask for one or it cannot be opened (the denial stands)."""
        me = chain[0]
        if not me.policy.approval_on_denial or reason not in BUDGET_DENIALS:
            return ""
        capped = next((r for r in chain if r.name == quota.subject), None)
        if capped is None:
            return ""
        cost = call.estimated_cost
        held = cost.micros if cost is not None and cost.currency == quota.unit else 0
        ask = ApprovalAsk(
            key=me.name, capped_key=capped.name, quota=quota.quota,
            amount=Money(quota.unit, shortfall(quota.limit, quota.used, held)),
            reason=f"{reason.value.lower().replace('_', ' ')}: {call.vendor} {call.method} "
            f"{call.path}".strip(),
            agent_run_id=call.agent_run_id,
        )  # fmt: skip
        try:
            return (await self._open(me, capped, ask, DENIAL_ACTOR)).name
        except KeyleashError as error:
            log.warning("no approval request opened for a denial of %s: %s", me.key_id, error)
            return ""

    async def get(self, credential: Credential, name: str) -> Approval:
        approval = await self.find(name)
        await self._check_view(credential, approval)
        return await self.expire_if_due(approval)

    async def find(self, name: str) -> Approval:
        parsed = parse_approval_name(name)
        approval = await self.store.get(parsed[1]) if parsed is not None else None
        if approval is None or parsed is None or approval.tenant_id != parsed[0]:
            raise NotFound(f"no approval request named {name!r}", reason=ErrorReason.NOT_FOUND)
        return approval

    async def _check_view(self, credential: Credential, approval: Approval) -> None:
        if credential.kind in (ADMIN, SERVICE):
            return
        caller = (await self.permissions.caller_chain(credential))[0]
        key = await self.permissions.key_by_name(
            Credential(ADMIN, "", credential.actor), _key_name(approval), allow_self=True
        )
        if caller.key_id not in key.key_path:
            raise PermissionDenied(f"{caller.name} may not see {approval.name}")

    async def expire_if_due(self, approval: Approval) -> Approval:
        """Records a pending request whose time ran out as expired (once)."""
        now = self.clock.now_ms()
        if approval.state is not ApprovalState.PENDING or now < approval.expire_ms:
            return approval
        decided = Decided(ApprovalState.EXPIRED, "expiry", now, "nobody decided in time")
        expired = await self.store.decide(approval.approval_id, decided)
        return expired or (await self.store.get(approval.approval_id)) or approval

    async def expire_due(self, limit: int = 500) -> int:
        """Records every pending request past its expiry as expired (once each, whichever
        replica gets there first); how many this call expired."""
        due = await self.store.due(self.clock.now_ms(), limit)
        expired = [await self.expire_if_due(a) for a in due]
        return sum(a.state is ApprovalState.EXPIRED for a in expired)

    async def list(
        self, credential: Credential, tenant_id: str, state: str, page_size: int, token: str
    ) -> tuple[list[Approval], str]:
        within = ""
        if credential.kind == KEY:
            caller = (await self.permissions.caller_chain(credential))[0]
            if tenant_id and tenant_id != caller.tenant_id:
                raise PermissionDenied("a key holder lists its own tenant's requests only")
            tenant_id, within = caller.tenant_id, caller.key_id
        elif not tenant_id:
            raise InvalidArgument("tenant_id", "required for an admin or service caller")
        tag = page_tokens.filter_tag("approvals", tenant_id, state, within)
        position = page_tokens.decode(token, tag)
        after = None
        if position is not None:
            if len(position) != 2 or not isinstance(position[0], int):
                raise InvalidArgument("page_token", "not a token this service issued")
            after = (position[0], str(position[1]))
        size = page_size or 100
        rows = await self.store.list(tenant_id, state, within, after, size + 1)
        next_token = ""
        if len(rows) > size:
            rows = rows[:size]
            next_token = page_tokens.encode([rows[-1].create_ms, rows[-1].approval_id], tag)
        return [await self.expire_if_due(a) for a in rows], next_token


def _key_name(approval: Approval) -> str:
    return f"tenants/{approval.tenant_id}/keys/{approval.key_id}"
