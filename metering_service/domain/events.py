"""A billing event as the metering domain sees it, and the pure rules around one."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from enum import Enum

import orjson

from keyleash_core.fx import Conversion
from keyleash_core.money import Money
from keyleash_core.times import datetime_from_us


class Kind(Enum):
    """Stored kinds (billing_events.kind)."""

    CHARGE = "charge"
    USAGE = "usage"
    REFUND = "refund"
    RELEASE = "release"


def charge_kind(micros: int) -> Kind:
    """A Charge's kind: positive charges, negative refunds, zero releases a hold."""
    if micros > 0:
        return Kind.CHARGE
    if micros < 0:
        return Kind.REFUND
    return Kind.RELEASE


@dataclass(frozen=True)
class BillingEvent:
    """One immutable billing event. Times are microseconds since the epoch (Postgres precision),
    so keyset pagination on (occur_time, event_id) round-trips exactly."""

    event_id: str
    request_id: str
    tenant_id: str
    key_id: str
    parent_key_id: str
    key_path: tuple[str, ...]
    agent_id: str
    kind: Kind
    amount: Money
    occur_time_us: int
    agent_run_id: str = ""
    trace_id: str = ""
    vendor: str = ""
    endpoint: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reason: str = ""
    cost_source: str = ""
    vendor_request_id: str = ""
    reservation_id: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    record_time_us: int = 0
    # The Postgres transaction that recorded it (xid8 as text); set by the billing stream.
    commit_xid: str = ""
    # The amount in every other currency a cap of the key chain is in, at the rate in force
    # when it was recorded (billing_events.converted): what it counts in those caps.
    converted: dict[str, Conversion] = field(default_factory=dict)

    @property
    def occur_time_ms(self) -> int:
        return self.occur_time_us // 1000

    def recorded(self, record_time_us: int, commit_xid: str) -> BillingEvent:
        """This event as the billing stream recorded it. A copy of the fields by hand, not
        `dataclasses.replace`: it runs once per recorded event, and replace (which inspects
        every field) costs 4.8 µs against 0.7 µs here (measured)."""
        fields = dict(self.__dict__)
        fields["record_time_us"] = record_time_us
        fields["commit_xid"] = commit_xid
        event = object.__new__(BillingEvent)
        object.__setattr__(event, "__dict__", fields)
        return event


@dataclass(frozen=True)
class WriteResult:
    """What the billing stream answered for one request: the first event for its request_id,
    and whether it was recorded before (a retry)."""

    event: BillingEvent
    duplicate: bool


def payload_digest(rpc: str, serialized_request: bytes) -> bytes:
    """What makes two requests with the same request_id "the same": the RPC and its bytes
    (deterministic serialization), so a retry matches and a different payload does not."""
    return hashlib.sha256(rpc.encode("ascii") + b"\x00" + serialized_request).digest()


def utc_day(micros: int) -> date:
    """The UTC day an event counts in (daily_spend.day)."""
    return datetime_from_us(micros).date()


def converted_to_json(converted: dict[str, Conversion]) -> str:
    """billing_events.converted: {"USD": {"micros": .., "rate": "1.08", "version": ..}}."""
    if not converted:
        return "{}"
    return orjson.dumps(
        {
            cur: {"micros": c.amount.micros, "rate": c.rate, "version": c.version}
            for cur, c in converted.items()
        },
        option=orjson.OPT_SORT_KEYS,
    ).decode()


def converted_from_json(text: str) -> dict[str, Conversion]:
    return {
        cur: Conversion(Money(cur, int(v["micros"])), v["rate"], v["version"])
        for cur, v in json.loads(text).items()
    }
