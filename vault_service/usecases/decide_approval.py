"""ApproveApproval and DenyApproval: who may decide, the decision recorded (approvals row and
the key's history in one transaction), and on approval the grant made visible to the decision
script (grant.lua), which adds it to the cap for the denial's window only.

Postgres first, then Redis: a crash in between leaves the grant durable but not yet seen, which
is stricter, never looser; the next load of the key restores it (store/rebuild.py), and a
retried approval by an authorized caller applies it (grant.lua is idempotent per approval).
"""

from __future__ import annotations

from dataclasses import dataclass

from keyleash_core import approval_links
from keyleash_core.approval_links import LinkAction, LinkRefused
from keyleash_core.auth import ADMIN, KEY, SERVICE, Credential
from keyleash_core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from keyleash_core.money import Money
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import Scripts
from keyleash_core.windows import DAY_MS, RUN_TTL_MS
from vault_service.domain.approvals import RUN_QUOTA, Approval, ApprovalState
from vault_service.store.approvals import Decided, LinkUsed
from vault_service.usecases.approvals import ApprovalDesk


@dataclass(frozen=True)
class Verdict:
    """One ApproveApproval or DenyApproval call."""

    name: str
    action: LinkAction
    reason: str
    amount: Money | None = None
    link_token: str = ""


class ApprovalDecider:
    def __init__(self, desk: ApprovalDesk, scripts: Scripts, pepper: bytes) -> None:
        self._desk = desk
        self._scripts = scripts
        self._pepper = pepper

    async def decide(self, credential: Credential, verdict: Verdict) -> Approval:
        desk = self._desk
        approval = await desk.find(verdict.name)
        actor, digest = await self._authority(credential, verdict, approval)
        approval = await desk.expire_if_due(approval)
        if approval.state is ApprovalState.APPROVED and not verdict.link_token:
            # A retry after a crash between Postgres and Redis: the grant is applied (once).
            await self._apply_grant(approval)
        if approval.state is not ApprovalState.PENDING:
            raise _not_pending(approval)
        granted = None
        if verdict.action is LinkAction.APPROVE:
            granted = _granted(approval, verdict.amount)
        state = ApprovalState.APPROVED if granted is not None else ApprovalState.DENIED
        decided = Decided(state, actor, desk.clock.now_ms(), verdict.reason, granted, digest)
        try:
            result = await desk.store.decide(approval.approval_id, decided)
        except LinkUsed:
            raise PermissionDenied("this link was already used") from None
        if result is None:
            raise _not_pending((await desk.store.get(approval.approval_id)) or approval)
        if result.state is ApprovalState.APPROVED:
            await self._apply_grant(result)
        return result

    async def _authority(
        self, credential: Credential, verdict: Verdict, approval: Approval
    ) -> tuple[str, bytes | None]:
        """Who decides (the audit's actor) and the used link's digest, or PermissionDenied."""
        if verdict.link_token:
            return await self._link_authority(credential, verdict, approval)
        if credential.kind == ADMIN:
            return credential.actor, None
        if credential.kind != KEY:
            raise PermissionDenied("service credentials decide only with a signed link")
        caller = (await self._desk.permissions.caller_chain(credential))[0]
        if caller.key_id == approval.key_id:
            raise PermissionDenied("a key cannot decide its own approval request")
        capped = await self._desk.permissions.key_by_name(
            Credential(ADMIN, "", credential.actor), _capped_name(approval), allow_self=True
        )
        if caller.key_id not in capped.key_path[:-1]:
            raise PermissionDenied(
                f"only an admin or an ancestor of {capped.name} may decide {approval.name}"
            )
        return credential.actor, None

    async def _link_authority(
        self, credential: Credential, verdict: Verdict, approval: Approval
    ) -> tuple[str, bytes | None]:
        if credential.kind not in (ADMIN, SERVICE):
            raise PermissionDenied("signed links are redeemed by the approvals endpoint")
        now = self._desk.clock.now_ms()
        try:
            claim = approval_links.verify_link(self._pepper, verdict.link_token, now)
        except LinkRefused as refused:
            raise PermissionDenied(f"link refused: {refused}") from None
        if claim.approval_name != approval.name or claim.action is not verdict.action:
            raise PermissionDenied("link refused: it is for another request or action")
        digest = approval_links.token_digest(verdict.link_token)
        if await self._desk.store.link_used(digest):
            raise PermissionDenied("this link was already used")
        return f"link:{digest.hex()[:16]}", digest

    async def _apply_grant(self, approval: Approval) -> None:
        grant_key = keyspace.spend_grant(
            approval.tenant_id, approval.capped_key_id, approval.currency, approval.quota,
            approval.window_id,
        )  # fmt: skip
        now = self._desk.clock.now_ms()
        ttl = 0
        if approval.grant_end_ms is not None:
            ttl = max(approval.grant_end_ms - now, 0) + DAY_MS
        elif approval.quota == RUN_QUOTA:
            ttl = RUN_TTL_MS
        await self._scripts.run(
            "grant",
            [keyspace.key(approval.tenant_id, approval.capped_key_id), grant_key],
            [str(approval.granted_micros or 0), str(ttl), approval.approval_id],
        )


def _granted(approval: Approval, amount: Money | None) -> int:
    if amount is None:
        return approval.amount_micros
    if amount.currency != approval.currency:
        raise InvalidArgument("amount", f"in the cap's currency, {approval.currency}")
    if amount.micros <= 0:
        raise InvalidArgument("amount", "a positive amount")
    return amount.micros


def _not_pending(approval: Approval) -> FailedPrecondition:
    return FailedPrecondition(
        f"{approval.name} is {approval.state.value}, not pending",
        metadata={"state": approval.state.value},
    )


def _capped_name(approval: Approval) -> str:
    return f"tenants/{approval.tenant_id}/keys/{approval.capped_key_id}"
