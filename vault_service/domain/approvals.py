"""Approval requests as plain data, and their pure rules: which cap a request names, the window
its grant lives in, when a pending request expires, how much a denied call asks for. No I/O;
the caller passes the time."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from keyleash_core.keyrecord import KeyRecord
from keyleash_core.policy import SpendWindow
from keyleash_core.windows import DAY_MS, GrantWindow, grant_window

RUN_QUOTA = "run"
# A pending request waits at most this long (less when its window ends sooner).
MAX_PENDING_MS = DAY_MS
APPROVAL_ID_PATTERN = re.compile(r"ap_[0-9a-f]{24}")


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Approval:
    """One approval request (a row of the approvals table)."""

    approval_id: str
    tenant_id: str
    key_id: str
    capped_key_id: str
    quota: str
    currency: str
    window_id: str
    agent_run_id: str
    amount_micros: int
    reason: str
    state: ApprovalState
    granted_micros: int | None
    create_ms: int
    expire_ms: int
    decide_ms: int | None
    decided_by: str
    decision_reason: str
    grant_end_ms: int | None
    requested_by: str

    @property
    def name(self) -> str:
        return approval_name(self.tenant_id, self.approval_id)


@dataclass(frozen=True)
class CapTarget:
    """The cap a request raises: its currency, its window (None: the run cap), its grant."""

    currency: str
    window: SpendWindow | None
    grant: GrantWindow


class UnknownCap(ValueError):
    """The key has no spend cap of that name (or no run cap, or no run was named)."""


def new_approval_id() -> str:
    return "ap_" + secrets.token_hex(12)


def approval_name(tenant_id: str, approval_id: str) -> str:
    return f"tenants/{tenant_id}/approvals/{approval_id}"


def parse_approval_name(name: str) -> tuple[str, str] | None:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "approvals":
        return None
    if APPROVAL_ID_PATTERN.fullmatch(parts[3]) is None:
        return None
    return parts[1], parts[3]


def cap_target(record: KeyRecord, quota: str, agent_run_id: str, now_ms: int) -> CapTarget:
    """The cap of `record` named `quota` and the window a grant made now would live in."""
    if quota == RUN_QUOTA:
        run_cap = record.policy.run_spend_cap
        if run_cap is None:
            raise UnknownCap(f"{record.name} has no run cap")
        if not agent_run_id:
            raise UnknownCap('quota "run" needs the agent_run_id')
        return CapTarget(run_cap.currency, None, grant_window(None, now_ms, agent_run_id))
    for cap in record.policy.spend_caps:
        if cap.quota_name == quota:
            return CapTarget(cap.limit.currency, cap.window, grant_window(cap.window, now_ms))
    raise UnknownCap(f"{record.name} has no spend cap {quota!r}")


def pending_expire_ms(create_ms: int, grant: GrantWindow) -> int:
    """A request is pending until its window ends, and at most MAX_PENDING_MS."""
    latest = create_ms + MAX_PENDING_MS
    return min(latest, grant.end_ms) if grant.end_ms else latest


def is_expired(approval: Approval, now_ms: int) -> bool:
    return approval.state is ApprovalState.PENDING and now_ms >= approval.expire_ms


def shortfall(limit: int, used: int, cost: int) -> int:
    """How much more a denied call needs the cap to be (at least one micro)."""
    return max(used + cost - limit, 1)
