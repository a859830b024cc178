"""The one mapping from receiver outcomes to HTTP answers (pure).

Errors: {"error": {"type": "keyleash_usage_hook_error", "code": <UsageHookError>, "message":
...}}. 400 malformed delivery or events, or a timestamp outside the replay window; 401
signature not matching (or no secret for the tenant); 404 no such route; 409 an event id reused
for different usage; 413 body too large; 422 events refused (unknown key or model, a key of
another tenant, an agent with no single active key); 503 Metering or Vault unavailable (nothing
acknowledged; retry the same delivery).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import orjson

from keyleash.metering.v1 import metering_pb2


class UsageHookError(StrEnum):
    """The `code` of an error answer."""

    INVALID_REQUEST = "INVALID_REQUEST"  # 400
    TIMESTAMP_OUT_OF_WINDOW = "TIMESTAMP_OUT_OF_WINDOW"  # 400: replay window
    INVALID_SIGNATURE = "INVALID_SIGNATURE"  # 401
    EVENT_ID_REUSED = "EVENT_ID_REUSED"  # 409
    NOT_FOUND = "NOT_FOUND"  # 404 / 405: no such route
    BODY_TOO_LARGE = "BODY_TOO_LARGE"  # 413
    EVENT_REJECTED = "EVENT_REJECTED"  # 422
    UNAVAILABLE = "UNAVAILABLE"  # 503


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


JSON = ("Content-Type", "application/json")


def error(status: int, code: UsageHookError, message: str) -> Reply:
    body = {"error": {"type": "keyleash_usage_hook_error", "code": code.value, "message": message}}
    headers = [JSON, ("Retry-After", "1")] if status == 503 else [JSON]
    return Reply(status, orjson.dumps(body), headers)


def recorded(event_ids: list[str], response: metering_pb2.BatchRecordUsageResponse) -> Reply:
    """200: every event committed; per event its billing event id, price and duplicate flag."""
    events = []
    for event_id, one in zip(event_ids, response.responses, strict=True):
        event = one.event  # each read of a nested message builds a view of it: once each
        amount = event.amount
        events.append(
            {
                "id": event_id,
                "billing_event_id": event.event_id,
                "amount": {"currency_code": amount.currency_code, "micros": amount.micros},
                "duplicate": one.duplicate,
            }
        )
    body = {
        "accepted": response.accepted,
        "duplicates": response.duplicates,
        "events": events,
        "tenant": {"tenant_id": response.tenant.tenant_id, "throttled": response.tenant.throttled},
    }
    return Reply(200, orjson.dumps(body), [JSON])
