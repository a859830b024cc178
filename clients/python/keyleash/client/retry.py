"""When the client retries, and how long it waits.

Only UNAVAILABLE is retried (the server, or its store, decided nothing), and only where a second
attempt cannot do anything twice:

- read-only RPCs (GetKey, ListKeys, ValidateKey, GetSpend, GetTenant, ListBillingEvents);
- RPCs idempotent by `request_id` when the request carries one (Charge and RecordUsage always do,
  BatchCharge and BatchRecordUsage for each of its items:
  the client fills a fresh id when it is empty; MintKey and Authorize only when the caller sets
  one). Every attempt sends the very same request, so the same request_id.

Everything else (RevokeKey, FreezeKey, UnfreezeKey, UpdateKeyPolicy, SetTenantBudget, streams,
DEADLINE_EXCEEDED whose outcome is unknown, every other code) fails at once.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from keyleash.client.errors import KeyleashError


class CallKind(enum.Enum):
    """How safe it is to send an RPC again."""

    READ_ONLY = "read_only"
    IDEMPOTENT_BY_REQUEST_ID = "request_id"
    # A batch whose every item carries its own request_id (BatchRecordUsage).
    IDEMPOTENT_BY_ITEM_REQUEST_IDS = "item_request_ids"
    UNSAFE = "unsafe"


CALL_KINDS: dict[str, CallKind] = {
    # VaultService
    "GetKey": CallKind.READ_ONLY,
    "ListKeys": CallKind.READ_ONLY,
    "ListAuthorizations": CallKind.READ_ONLY,
    "ValidateKey": CallKind.READ_ONLY,
    "MintKey": CallKind.IDEMPOTENT_BY_REQUEST_ID,
    "Authorize": CallKind.IDEMPOTENT_BY_REQUEST_ID,
    "AuthorizeBatch": CallKind.IDEMPOTENT_BY_ITEM_REQUEST_IDS,
    "GetConnection": CallKind.READ_ONLY,
    "ListConnections": CallKind.READ_ONLY,
    "AccessConnectionSecret": CallKind.READ_ONLY,
    "CreateConnection": CallKind.IDEMPOTENT_BY_REQUEST_ID,
    "GetPolicyTemplate": CallKind.READ_ONLY,
    "ListPolicyTemplates": CallKind.READ_ONLY,
    "CreatePolicyTemplate": CallKind.IDEMPOTENT_BY_REQUEST_ID,
    "ProvisionAgent": CallKind.IDEMPOTENT_BY_REQUEST_ID,
    # MeteringService
    "GetSpend": CallKind.READ_ONLY,
    "GetTenant": CallKind.READ_ONLY,
    "ListBillingEvents": CallKind.READ_ONLY,
    "Charge": CallKind.IDEMPOTENT_BY_REQUEST_ID,
    "BatchCharge": CallKind.IDEMPOTENT_BY_ITEM_REQUEST_IDS,
    "RecordUsage": CallKind.IDEMPOTENT_BY_REQUEST_ID,
    "AccessUsageWebhookSecret": CallKind.READ_ONLY,
    "GetTenantModelPrice": CallKind.READ_ONLY,
    "BatchRecordUsage": CallKind.IDEMPOTENT_BY_ITEM_REQUEST_IDS,
}

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})


def is_safe_to_retry(rpc: str, request: Message | None, code: grpc.StatusCode) -> bool:
    """Whether `rpc` with `request` may be sent again after failing with `code`."""
    if code not in RETRYABLE_CODES:
        return False
    kind = CALL_KINDS.get(rpc, CallKind.UNSAFE)
    if kind is CallKind.READ_ONLY:
        return True
    if kind is CallKind.IDEMPOTENT_BY_REQUEST_ID:
        return bool(getattr(request, "request_id", ""))
    if kind is CallKind.IDEMPOTENT_BY_ITEM_REQUEST_IDS:
        items = getattr(request, "requests", ())
        return bool(items) and all(item.request_id for item in items)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, jittered exponential backoff.

    Attempt n (1-based) that fails waits a random time in [0, min(max_backoff,
    initial_backoff * multiplier**(n-1))] ("full jitter"), but at least the server's RetryInfo
    delay when it gave one (capped by max_backoff). At most `max_attempts` are made, and no
    retry starts `deadline` seconds or more after the first attempt did. Each attempt has the
    call's own timeout.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    deadline: float = 20.0

    def backoff(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        delay = ceiling * rand()
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff))
        return delay

    def next_delay(
        self,
        rpc: str,
        request: Message | None,
        error: KeyleashError,
        attempt: int,
        elapsed: float,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """How long to wait before another attempt, or None when the error must be raised."""
        if error.code is None or not is_safe_to_retry(rpc, request, error.code):
            return None
        if attempt >= self.max_attempts:
            return None
        delay = self.backoff(attempt, error.retry_after, rand)
        if elapsed + delay >= self.deadline:
            return None
        return delay


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)
