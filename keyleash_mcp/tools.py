"""The MCP tools' use cases. Each acts with the caller's own vault key as its credential, so the
vault decides what the caller may do (a child is never minted beyond its parent, only a
descendant is frozen); these functions add only what an agent needs on top: descendants only
for freeze/revoke, money as text, and a budget status that says STOP when nothing is left.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from google.protobuf import duration_pb2
from pydantic import BaseModel, Field

from keyleash.client import MeteringClient, VaultClient
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_mcp.views import STOP_BUDGET, exhausted_spend, money_text, quota_view

WINDOWS = {
    "day": V.SpendCap.WINDOW_CALENDAR_DAY,
    "month": V.SpendCap.WINDOW_CALENDAR_MONTH,
    "24h": V.SpendCap.WINDOW_ROLLING_24H,
    "lifetime": V.SpendCap.WINDOW_LIFETIME,
}
_AMOUNT = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"
_CURRENCY = r"^[A-Z]{3}$"


class SpendCapInput(BaseModel):
    """A spend cap of the child key."""

    amount: str = Field(
        description='Decimal amount, at most 6 decimals, e.g. "5.00"', pattern=_AMOUNT
    )
    currency: str = Field(description="ISO 4217 code, e.g. USD", pattern=_CURRENCY)
    window: Literal["day", "month", "24h", "lifetime"] = Field(
        description="day/month: the calendar UTC day/month; 24h: rolling; lifetime: ever"
    )


class RateLimitInput(BaseModel):
    """A rate limit of the child key."""

    limit: int = Field(ge=1, le=1_000_000, description="calls admitted per window")
    window_seconds: int = Field(ge=1, le=31 * 86400, description="sliding window length")


class ChildKeySpec(BaseModel):
    """What the sub-agent's key may do: never more than the caller's own key."""

    agent_id: str = Field(min_length=1, max_length=128, description="the sub-agent's id")
    label: str = Field(default="", max_length=120, description="free text shown to operators")
    scopes: list[str] = Field(
        min_length=1, max_length=32, description="a subset of the caller's scopes"
    )
    spend_caps: list[SpendCapInput] = Field(default_factory=list, max_length=8)
    rate_limits: list[RateLimitInput] = Field(default_factory=list, max_length=8)
    allowed_vendors: list[str] = Field(
        default_factory=list, max_length=32, description="empty: the caller's vendors"
    )
    ttl_seconds: int = Field(
        default=3600, ge=60, le=30 * 86400, description="lifetime, capped by the caller's expiry"
    )
    request_id: str = Field(
        default="", max_length=128, description="idempotency: the same id mints the key once"
    )


class ApprovalAsk(BaseModel):
    """Which cap to raise, by how much, and why (a human reads it)."""

    quota: str = Field(
        pattern=r"^(spend/(calendar_day|calendar_month|rolling_24h|lifetime)|run)$",
        description='the cap that stopped you: "spend/calendar_day", "spend/calendar_month", '
        '"spend/rolling_24h", "spend/lifetime", or "run" (with agent_run_id)',
    )
    amount: str = Field(description='how much more, e.g. "5.00"', pattern=_AMOUNT)
    currency: str = Field(description="the cap's currency, e.g. USD", pattern=_CURRENCY)
    reason: str = Field(min_length=1, max_length=1000, description="why, for the approver")
    agent_run_id: str = Field(default="", max_length=256, description="required for quota run")
    capped_key: str = Field(
        default="", max_length=200, description="the ancestor key whose cap stopped you, if any"
    )


def approval_view(approval: V.Approval) -> dict[str, Any]:
    view: dict[str, Any] = {
        "approval": approval.name,
        "state": V.Approval.State.Name(approval.state).removeprefix("STATE_"),
        "quota": approval.quota,
        "amount": money_text(approval.amount.micros, approval.amount.currency_code),
    }
    if approval.HasField("granted"):
        view["granted"] = money_text(approval.granted.micros, approval.granted.currency_code)
    if approval.HasField("expire_time"):
        view["expires_at"] = approval.expire_time.ToJsonString()
    return view


def _money(amount: str, currency: str, field: str) -> money_pb2.Money:
    try:
        micros = int(Decimal(amount) * 1_000_000)
    except InvalidOperation:
        raise WrongArguments(f"{field}: not a decimal amount") from None
    return money_pb2.Money(currency_code=currency, micros=micros)


def child_request(spec: ChildKeySpec) -> V.MintKeyRequest:
    policy = V.Policy(allowed_vendors=spec.allowed_vendors)
    for index, cap in enumerate(spec.spend_caps):
        limit = _money(cap.amount, cap.currency, f"spend_caps[{index}].amount")
        policy.spend_caps.add(limit=limit, window=WINDOWS[cap.window])
    for rate in spec.rate_limits:
        policy.rate_limits.add(
            limit=rate.limit, window=duration_pb2.Duration(seconds=rate.window_seconds)
        )
    return V.MintKeyRequest(
        agent_id=spec.agent_id,
        label=spec.label,
        scopes=spec.scopes,
        policy=policy,
        ttl=duration_pb2.Duration(seconds=spec.ttl_seconds),
        request_id=spec.request_id,
    )


class KeyleashTools:
    """The tools' use cases over one Vault and one Metering client (no default credential)."""

    def __init__(self, vault: VaultClient, metering: MeteringClient) -> None:
        self.vault = vault
        self.metering = metering

    async def me(self, key: str) -> V.Key:
        """The caller's key; StoppedKey when it cannot act (every tool asks first, so a frozen
        or revoked key hears STOP rather than a permission error it might work around)."""
        answer = await self.vault.validate_key(key, token=key)
        if not answer.valid:
            reason = V.DenyReason.Name(answer.reason).removeprefix("DENY_REASON_")
            raise StoppedKey(reason)
        return answer.key

    async def budget_status(self, key: str, agent_run_id: str) -> dict[str, Any]:
        """Every limit of the key and its ancestors (and the run's cap), consuming nothing."""
        await self.me(key)
        usage = await self.vault.get_key_usage(agent_run_id=agent_run_id, token=key)
        quotas = [q for entry in usage.keys for q in entry.quotas]
        status = {
            "key": usage.keys[0].name if usage.keys else "",
            "read_at": usage.read_time.ToJsonString(),
            "limits": [quota_view(q) for q in quotas],
            "open_holds": len(usage.keys[0].open_holds) if usage.keys else 0,
        }
        exhausted = exhausted_spend(quotas)
        if exhausted:
            raise BudgetExhausted(f"{STOP_BUDGET} (nothing left: {', '.join(exhausted)})", status)
        return status

    async def mint_child_key(self, key: str, spec: ChildKeySpec) -> dict[str, Any]:
        await self.me(key)
        minted = await self.vault.mint_key(child_request(spec), token=key)
        return {
            "key": minted.key.name,
            "secret": minted.secret,
            "expires_at": minted.key.expire_time.ToJsonString(),
            "scopes": list(minted.key.scopes),
            "note": "give the secret to the sub-agent only; it is not shown again",
        }

    async def _descendant(self, key: str, child: str) -> str:
        """The full name of `child` (an id or a name), refused unless it is another key."""
        me = await self.me(key)
        name = child if child.startswith("tenants/") else f"tenants/{me.tenant_id}/keys/{child}"
        if name == me.name:
            raise WrongArguments("key: names the caller's own key; only its descendants")
        return name

    async def freeze_child_key(self, key: str, child: str, reason: str) -> dict[str, Any]:
        frozen = await self.vault.freeze_key(
            await self._descendant(key, child), reason=reason, token=key
        )
        return {"key": frozen.name, "state": V.Key.State.Name(frozen.state).removeprefix("STATE_")}

    async def revoke_child_key(self, key: str, child: str, reason: str) -> dict[str, Any]:
        revoked = await self.vault.revoke_key(
            await self._descendant(key, child), reason=reason, token=key
        )
        return {"key": revoked.key.name, "state": "REVOKED",
                "revoked_descendants": revoked.revoked_descendants}  # fmt: skip

    async def request_approval(self, key: str, ask: ApprovalAsk) -> dict[str, Any]:
        """Asks a human to raise one cap for the rest of its window; the request, pending."""
        await self.me(key)
        approval = await self.vault.create_approval(
            quota=ask.quota,
            amount=_money(ask.amount, ask.currency, "amount"),
            reason=ask.reason,
            agent_run_id=ask.agent_run_id,
            capped_key=ask.capped_key,
            token=key,
        )
        return approval_view(approval) | {
            "note": "a human decides; poll approval_status, and do not retry the spend meanwhile"
        }

    async def approval_status(self, key: str, name: str) -> dict[str, Any]:
        await self.me(key)
        return approval_view(await self.vault.get_approval(name, token=key))

    async def spend_report(self, key: str, agent_run_id: str, limit: int) -> dict[str, Any]:
        """Spend of the key's subtree (or of one run) and its newest decisions."""
        me = await self.me(key)
        if agent_run_id:
            spend = await self.metering.get_spend(agent_run_id=agent_run_id, token=key)
        else:
            spend = await self.metering.get_spend(key_name=me.name, token=key)
        decisions = await self.vault.list_authorizations(
            V.ListAuthorizationsRequest(
                agent_run_id=agent_run_id, page_size=limit, order_by="decision_time desc"
            ),
            token=key,
        )
        return {
            "subject": f"run {agent_run_id}" if agent_run_id else me.name,
            "spent": [money_text(m.micros, m.currency_code) for m in spend.totals],
            "events": spend.event_count,
            "recent_decisions": [_decision(a) for a in decisions.authorizations],
        }


def _decision(a: V.Authorization) -> dict[str, Any]:
    view: dict[str, Any] = {
        "time": a.decision_time.ToJsonString(),
        "decision": "allow" if a.decision == V.DECISION_ALLOW else "deny",
        "call": f"{a.vendor} {a.method} {a.path}".strip(),
    }
    if a.reason:
        view["reason"] = V.DenyReason.Name(a.reason).removeprefix("DENY_REASON_")
    if a.HasField("estimated_cost"):
        view["estimated"] = money_text(a.estimated_cost.micros, a.estimated_cost.currency_code)
    if a.settled_events:
        view["settled"] = money_text(a.settled_cost.micros, a.settled_cost.currency_code)
    return view


class WrongArguments(Exception):
    """Arguments the tool refuses before asking Keyleash."""


class StoppedKey(Exception):
    """The caller's key is frozen, revoked, expired or unknown."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetExhausted(Exception):
    """A spend limit of the key, an ancestor or the run has nothing left."""

    def __init__(self, message: str, status: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
