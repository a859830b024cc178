"""What the approvals inbox and the templates pages ask of Keyleash: approval requests with
their cost context, decisions on them, the templates, and keys provisioned or minted from a
template. Every call carries the signed-in operator's token, as in usecases.Console.

The pure parts (amount parsing, a policy's limits as text) are here too, next to their only
users; they do no I/O and the templates escape what they return."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from keyleash.client import KeyleashError, VaultClient
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_console import views

INBOX_LIMIT = 200  # requests of each part (pending, the rest) one inbox page shows
TEMPLATES_LIMIT = 1000
MAX_AMOUNT_MICROS = 10**15  # a billion in any currency: more is a typo
APPROVAL_STATES: dict[str, V.Approval.State] = {
    "": V.Approval.STATE_UNSPECIFIED,
    "pending": V.Approval.STATE_PENDING,
    "approved": V.Approval.STATE_APPROVED,
    "denied": V.Approval.STATE_DENIED,
    "expired": V.Approval.STATE_EXPIRED,
}


class AmountError(ValueError):
    """An amount an operator typed that is not a positive money amount."""


def approval_state_name(state: int) -> str:
    return V.Approval.State.Name(state).removeprefix("STATE_").lower()


def parse_amount(text: str, currency: str) -> money_pb2.Money:
    """ "5", "5.50" or "5.50 USD" as exact micros of `currency` (at most six decimals)."""
    number, _, unit = text.strip().partition(" ")
    if unit.strip() and unit.strip().upper() != currency:
        raise AmountError(f"the cap is in {currency}, not {unit.strip()}")
    try:
        micros = Decimal(number) * views.MICROS
    except InvalidOperation:
        raise AmountError(f"{text!r} is not an amount") from None
    if not micros.is_finite() or micros != micros.to_integral_value():
        raise AmountError("an amount has at most six decimals")
    if not 0 < micros <= MAX_AMOUNT_MICROS:
        raise AmountError("the amount must be positive (and at most 1,000,000,000)")
    return money_pb2.Money(currency_code=currency, micros=int(micros))


def amount_field(money: money_pb2.Money) -> str:
    """The number a form's amount field starts with ("5.00" for 5 USD)."""
    return views.money_text(money.micros, "").strip()


def window_name(window: int) -> str:
    return V.SpendCap.Window.Name(window).removeprefix("WINDOW_").lower()


def policy_limits(policy: V.Policy) -> list[str]:
    """Every limit of a policy as a short text, e.g. "500.00 USD / rolling_24h"."""
    limits = [f"{views.money_of(c.limit)} / {window_name(c.window)}" for c in policy.spend_caps]
    if policy.HasField("max_cost_per_call"):
        limits.append(f"{views.money_of(policy.max_cost_per_call)} a call")
    if policy.HasField("run_spend_cap"):
        limits.append(f"{views.money_of(policy.run_spend_cap)} a run")
    limits += [f"{r.limit} calls / {r.window.ToSeconds()}s" for r in policy.rate_limits]
    if policy.max_calls:
        limits.append(f"{policy.max_calls} calls in all")
    if policy.allowed_vendors:
        limits.append("vendors: " + ", ".join(policy.allowed_vendors))
    return limits


@dataclass(frozen=True)
class ApprovalView:
    approval: V.Approval
    state: str
    key_id: str
    capped_key_id: str
    usage: views.UsageBar | None  # the capped key's quota the request is about, as read now
    amount_field: str


@dataclass(frozen=True)
class TemplateView:
    template: V.PolicyTemplate
    shipped: bool
    limits: list[str]
    vendor_keys: list[tuple[str, list[str]]]  # (vendor, its own limits)


@dataclass(frozen=True)
class Minted:
    """Keys and their secrets, for the one page that shows them; kept nowhere."""

    what: str  # "provisioned" or "minted"
    agent_id: str
    template: str
    keys: list[V.MintKeyResponse]


def _key_id(name: str) -> str:
    return name.rpartition("/keys/")[2]


def template_view(template: V.PolicyTemplate) -> TemplateView:
    return TemplateView(
        template,
        not template.name.startswith("tenants/"),
        policy_limits(template.policy),
        [(v.vendor, policy_limits(v.policy)) for v in template.vendor_keys],
    )


class Inbox:
    """The approvals and templates use cases over the console's VaultClient."""

    def __init__(self, vault: VaultClient) -> None:
        self.vault = vault

    async def approvals(self, token: str, tenant_id: str, state: str) -> list[ApprovalView]:
        """The tenant's requests newest first; with no state filter, the pending ones first."""
        wanted = APPROVAL_STATES.get(state, V.Approval.STATE_UNSPECIFIED)
        listed = await self._approvals(token, tenant_id, wanted)
        if wanted == V.Approval.STATE_UNSPECIFIED:
            pending = [a for a in listed if a.state == V.Approval.STATE_PENDING]
            listed = pending + [a for a in listed if a.state != V.Approval.STATE_PENDING]
        usages = await asyncio.gather(*(self._usage(token, a) for a in listed))
        return [
            ApprovalView(
                a,
                approval_state_name(a.state),
                _key_id(a.key),
                _key_id(a.capped_key),
                usage,
                amount_field(a.amount),
            )
            for a, usage in zip(listed, usages, strict=True)
        ]

    async def _approvals(
        self, token: str, tenant_id: str, state: V.Approval.State
    ) -> list[V.Approval]:
        found: list[V.Approval] = []
        async for approval in self.vault.iter_approvals(
            tenant_id=tenant_id, state=state, page_size=INBOX_LIMIT, token=token
        ):
            found.append(approval)
            if len(found) >= INBOX_LIMIT:
                break
        return found

    async def _usage(self, token: str, approval: V.Approval) -> views.UsageBar | None:
        """The capped key's quota the request is about: what is used of its limit now."""
        if approval.state != V.Approval.STATE_PENDING:
            return None  # decided: the context that mattered is in the request itself
        run = approval.agent_run_id if approval.quota == "run" else ""
        try:
            usage = await self.vault.get_key_usage(
                V.GetKeyUsageRequest(name=approval.capped_key, agent_run_id=run), token=token
            )
        except KeyleashError:
            return None  # a revoked or gone key has no live usage
        quotas = [
            q
            for k in usage.keys
            if k.name == approval.capped_key
            for q in k.quotas
            if q.quota == approval.quota
        ]
        bars = views.usage_bars(quotas[:1])
        return bars[0] if bars else None

    async def get(self, token: str, name: str) -> V.Approval:
        return await self.vault.get_approval(name, token=token)

    async def approve(
        self, token: str, name: str, amount: money_pb2.Money, reason: str
    ) -> V.Approval:
        return await self.vault.approve_approval(name, amount=amount, reason=reason, token=token)

    async def deny(self, token: str, name: str, reason: str) -> V.Approval:
        return await self.vault.deny_approval(name, reason=reason, token=token)

    async def templates(self, token: str, tenant_id: str) -> list[TemplateView]:
        found: list[V.PolicyTemplate] = []
        page_token = ""
        while len(found) < TEMPLATES_LIMIT:
            page = await self.vault.list_policy_templates(
                tenant_id=tenant_id, page_size=100, page_token=page_token, token=token
            )
            found += page.templates
            page_token = page.next_page_token
            if not page_token:
                break
        return [template_view(t) for t in found]

    async def provision(
        self, token: str, tenant_id: str, agent_id: str, template: str, label: str, request_id: str
    ) -> Minted:
        answer = await self.vault.provision_agent(
            tenant_id=tenant_id,
            agent_id=agent_id,
            template=template,
            label=label,
            request_id=request_id,
            token=token,
        )
        return Minted("provisioned", agent_id, template, list(answer.keys))

    async def mint(
        self, token: str, tenant_id: str, agent_id: str, template: str, label: str, request_id: str
    ) -> Minted:
        minted = await self.vault.mint_key(
            tenant_id=tenant_id,
            agent_id=agent_id,
            template=template,
            label=label,
            request_id=request_id,
            token=token,
        )
        return Minted("minted", agent_id, template, [minted])
