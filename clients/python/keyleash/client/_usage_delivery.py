"""What both usage webhook senders share (pure): batches, the Standard Webhooks signature, the
answer read back, and whether and how long to wait before the next attempt."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

from standardwebhooks.webhooks import Webhook

MAX_BATCH = 1000
# Answers worth another attempt: nothing was recorded (503), or the receiver is busy.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class UsageWebhookError(Exception):
    """The receiver refused the events (e.g. 400 malformed, 401 bad secret, 422 unknown key or
    model), or every attempt failed. `status` is the last HTTP status (0: no answer); `code` the
    receiver's error code. Nothing in the refused batch was recorded."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status, self.code, self.message = status, code, message


class UsageEvent(TypedDict, total=False):
    """One usage event as the receiver reads it: `id` and `model`, and exactly one of `key_id`
    or `agent_id` (the receiver records against the agent's one active root-most key in the
    tenant, and refuses with 422 an agent with none or several). `time` is RFC 3339."""

    id: str
    key_id: str
    agent_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    agent_run_id: str
    time: str
    tenant: str


@dataclass
class UsageWebhookResult:
    """What the receiver recorded over all batches of one send()."""

    accepted: int = 0
    duplicates: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    tenant_throttled: bool = False

    def add(self, answer: Mapping[str, Any]) -> None:
        self.accepted += int(answer.get("accepted", 0))
        self.duplicates += int(answer.get("duplicates", 0))
        self.events.extend(answer.get("events", []))
        self.tenant_throttled = bool(answer.get("tenant", {}).get("throttled", False))


def batches(events: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """JSON bodies of at most MAX_BATCH events each. An event without an `id` gets a fresh one
    (a resend from another process then counts it again: give ids to make that safe too). An
    event naming neither or both of key_id and agent_id is refused here, before anything is
    sent (the receiver would refuse its whole batch)."""
    events = list(events)
    for i, event in enumerate(events):
        if bool(event.get("key_id")) == bool(event.get("agent_id")):
            raise UsageWebhookError(
                0, "INVALID_REQUEST", f"events[{i}]: exactly one of key_id or agent_id is required"
            )
    prepared = [dict(e) if e.get("id") else {**e, "id": uuid.uuid4().hex} for e in events]
    return [
        json.dumps({"events": prepared[i : i + MAX_BATCH]}, separators=(",", ":")).encode()
        for i in range(0, len(prepared), MAX_BATCH)
    ]


def signed_headers(secret: str, webhook_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, signed now (each attempt anew; the
    webhook-id stays the same across attempts)."""
    stamp = now.astimezone(UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, stamp, body.decode()),
    }


def new_webhook_id() -> str:
    return "msg_" + uuid.uuid4().hex


def error_of(status: int, body: bytes, failure: str) -> UsageWebhookError:
    try:
        error = json.loads(body)["error"]
        return UsageWebhookError(status, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        text = failure or body[:200].decode(errors="replace")
        return UsageWebhookError(status, "", text or "no answer")


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff, at least the receiver's Retry-After."""

    max_attempts: int = 5
    initial: float = 0.2
    multiplier: float = 2.0
    maximum: float = 5.0

    def delay(self, attempt: int, retry_after: str, rand: float | None = None) -> float:
        ceiling = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        wait = (random.random() if rand is None else rand) * ceiling
        if retry_after.isdigit():
            wait = max(wait, min(float(retry_after), self.maximum))
        return wait


DEFAULT_BACKOFF = Backoff()


def should_retry(status: int) -> bool:
    return status == 0 or status in RETRY_STATUSES


def events_url(base_url: str, tenant_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/tenants/{tenant_id}/usage-events"


def as_list(events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [events] if isinstance(events, Mapping) else list(events)
