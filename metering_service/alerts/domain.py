"""Pure alert logic: event types, which thresholds a spend has crossed, stable event ids, the
payloads (standard and Slack), the retry schedule and the dead-letter horizon. No I/O; the
caller passes the time."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keyleash_core.approval_links import LinkAction, sign_link

# Every event type a subscription may ask for.
EVENT_TYPES = frozenset(
    {
        "key.spend_crossed",
        "run.spend_crossed",
        "tenant.spend_crossed",
        "tenant.throttled",
        "tenant.throttle_lifted",
        "key.frozen",
        "key.unfrozen",
        "key.revoked",
        "key.denial_burst",
        "approval.requested",
        "approval.decided",
    }
)
# key_events.action -> event type (a cascade revoke announces each key of the subtree).
KEY_ACTIONS: Mapping[str, str] = {
    "freeze": "key.frozen",
    "unfreeze": "key.unfrozen",
    "revoke": "key.revoked",
    "revoke_cascade": "key.revoked",
    # Approval requests (vault_service approvals) are steps of the requesting key's history.
    "approval_requested": "approval.requested",
    "approval_approved": "approval.decided",
    "approval_denied": "approval.decided",
    "approval_expired": "approval.decided",
}
THRESHOLD_PERCENTS = (50, 80, 100)
# A burst: at least this many denials of one key within the window, announced once a minute.
BURST_DENIALS = 20
BURST_WINDOW_MS = 60_000
_EVENT_NAMESPACE = uuid.UUID("5b0c2a51-6b8e-4f0e-9d43-6b65796c6561")


def crossed_percents(spent_micros: int, limit_micros: int) -> tuple[int, ...]:
    """The thresholds `spent` has reached of `limit` (none for no limit)."""
    if limit_micros <= 0:
        return ()
    return tuple(p for p in THRESHOLD_PERCENTS if spent_micros * 100 >= limit_micros * p)


def event_id(tenant_id: str, fact_key: str) -> str:
    """The same fact always has the same id, whoever derives it: receivers dedupe on it."""
    return "evt_" + uuid.uuid5(_EVENT_NAMESPACE, f"{tenant_id}\x00{fact_key}").hex


@dataclass(frozen=True)
class Fact:
    """Something to announce once: `fact_key` is unique per tenant."""

    tenant_id: str
    fact_key: str
    event_type: str
    data: Mapping[str, Any]
    occur_ms: int

    @property
    def event_id(self) -> str:
        return event_id(self.tenant_id, self.fact_key)


def standard_payload(fact: Fact, timestamp: str) -> dict[str, Any]:
    """The Standard Webhooks JSON body: type, timestamp, data (with the event id and tenant)."""
    data = {"event_id": fact.event_id, "tenant_id": fact.tenant_id, **fact.data}
    return {"type": fact.event_type, "timestamp": timestamp, "data": data}


def _money(micros: Any, currency: Any) -> str:
    return f"{int(micros) / 1_000_000:.2f} {currency}"


def slack_text(payload: Mapping[str, Any]) -> str:
    """A sentence a human reads in a channel: what happened, to whom, how much of what."""
    data, kind = payload["data"], payload["type"]
    where = f"tenant {data['tenant_id']}"
    if data.get("key_id"):
        where += f", key {data['key_id']}"
    if data.get("agent_run_id"):
        where += f", run {data['agent_run_id']}"
    if kind.endswith("spend_crossed") or kind == "tenant.throttled":
        spent = _money(data["spent_micros"], data["currency_code"])
        cap = _money(data["limit_micros"], data["currency_code"])
        head = f"{data['percent']} % of {data.get('window', 'cap')} spent"
        if kind == "tenant.throttled":
            head = "Tenant throttled at its daily threshold"
        return f":rotating_light: {head} ({where}): {spent} / {cap}"
    if kind == "key.denial_burst":
        return f":no_entry: {data['denials']} denials in 60 s ({where})"
    if kind.startswith("approval."):
        return _approval_text(data, kind, where)
    if kind == "tenant.throttle_lifted":
        return f":white_check_mark: Throttle lifted ({where})"
    verb = kind.split(".", 1)[1].replace("_", " ")
    return f":lock: Key {verb} ({where}) by {data['actor']}: {data['reason'] or 'no reason given'}"


def _approval_text(data: Mapping[str, Any], kind: str, where: str) -> str:
    asked = _money(data.get("amount_micros", 0), data.get("currency_code", ""))
    what = f"{asked} more on {data.get('quota', 'a cap')}"
    if kind == "approval.requested":
        text = f":raising_hand: Approval requested ({where}): {what}"
        text += f" ({data['reason']})" if data.get("reason") else ""
        if data.get("approve_url"):
            text += f" <{data['approve_url']}|Approve> · <{data['deny_url']}|Deny>"
        return text
    state = str(data.get("state", "decided"))
    if state == "approved":
        what = _money(data.get("granted_micros") or 0, data.get("currency_code", "")) + " more"
    return f":ballot_box_with_check: Approval {state} ({where}) by {data['actor']}: {what}"


def approval_links(
    data: Mapping[str, Any], event_id: str, base_url: str, pepper: bytes
) -> dict[str, str]:
    """One-click approve/deny URLs for an approval.requested event (none without a base URL).
    Minted when delivered, never stored: the outbox holds no bearer links; the event id is the
    nonce, so a retried delivery carries the same links."""
    name, expire_ms = data.get("approval"), data.get("expire_ms")
    if not base_url or not name or not expire_ms:
        return {}
    return {
        f"{action.value}_url": f"{base_url}/approvals/{action.value}?token="
        + sign_link(pepper, str(name), action, int(expire_ms), event_id)
        for action in (LinkAction.APPROVE, LinkAction.DENY)
    }


def slack_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {"text": slack_text(payload)}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, and when to give up (the dead-letter horizon)."""

    base_ms: int = 1_000
    max_delay_ms: int = 3_600_000
    max_attempts: int = 40
    horizon_ms: int = 24 * 3_600_000

    def delay_ms(self, attempts: int, rng: random.Random) -> int:
        """Wait after the `attempts`-th failure: base * 2^(n-1), capped, minus up to 25 % jitter
        so many dispatchers retrying one endpoint spread out."""
        raw = min(self.base_ms * 2 ** min(max(attempts - 1, 0), 40), self.max_delay_ms)
        return int(raw * (1 - 0.25 * rng.random()))

    def dead(self, attempts: int, created_ms: int, now_ms: int) -> bool:
        return attempts >= self.max_attempts or now_ms - created_ms >= self.horizon_ms


def unknown_event_types(types: Sequence[str]) -> list[str]:
    return [t for t in types if t not in EVENT_TYPES]
