"""The usage events a delivery carries: JSON in, validated events out (pure).

A body is one event object, or {"events": [event, ...]} with 1 to 1,000 of them. An event:

    {"id": "evt_1", "key_id": "k_...", "model": "gpt-4o", "input_tokens": 1200,
     "output_tokens": 300, "cached_input_tokens": 0, "agent_run_id": "run-42",
     "time": "2026-12-02T05:00:00Z", "tenant": "acme"}

`id` (the sender's event id, what makes a resend count once) and `model` are required, and
exactly one of `key_id` or `agent_id` (the agent's key in the tenant, resolved by agents.py);
token counts default to 0; `time` (RFC 3339) defaults to when it is recorded; `tenant`, when
present, must be the tenant of the URL.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

import orjson

MAX_EVENTS = 1000
MAX_EVENT_ID = 100
MAX_TOKENS = 10**12
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens")
KNOWN_FIELDS = frozenset(
    {"id", "key_id", "agent_id", "model", "agent_run_id", "time", "tenant", *TOKEN_FIELDS}
)


_CONTROL = re.compile(r"[\x00-\x1f]")  # what "printable" excludes here


class EventsInvalid(Exception):
    """The body is not a valid event or batch; the message names the field."""


class UsageEvent(NamedTuple):
    """One event; `key_id` is empty while it names an agent (until agents.py resolves it). A
    named tuple: a delivery builds up to 1,000, and a frozen dataclass costs three times as much."""

    event_id: str
    key_id: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    agent_run_id: str = ""
    occur_time_us: int | None = None
    agent_id: str = ""


def parse_events(text: str, tenant_id: str) -> list[UsageEvent]:
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise EventsInvalid("the body is not JSON") from None
    if not isinstance(body, dict):
        raise EventsInvalid('the body must be an event object or {"events": [...]}')
    items = body.get("events") if "events" in body else [body]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_EVENTS:
        raise EventsInvalid(f"events must be a list of 1 to {MAX_EVENTS} events")
    events = [_event(item, f"events[{i}]", tenant_id) for i, item in enumerate(items)]
    seen: set[str] = set()
    for i, event in enumerate(events):
        if event.event_id in seen:
            raise EventsInvalid(f"events[{i}].id: {event.event_id!r} appears twice in the batch")
        seen.add(event.event_id)
    return events


def _event(item: Any, path: str, tenant_id: str) -> UsageEvent:
    if not isinstance(item, dict):
        raise EventsInvalid(f"{path}: must be an object")
    if not KNOWN_FIELDS.issuperset(item):
        unknown = sorted(set(item) - KNOWN_FIELDS)
        raise EventsInvalid(f"{path}.{unknown[0]}: unknown field")
    tenant = item.get("tenant", tenant_id)
    if tenant != tenant_id:
        raise EventsInvalid(f"{path}.tenant: must be the tenant of the URL ({tenant_id})")
    key_id = _text(item, "key_id", path, limit=128)
    agent_id = _text(item, "agent_id", path, limit=256)
    if bool(key_id) == bool(agent_id):
        raise EventsInvalid(f"{path}: exactly one of key_id or agent_id is required")
    return UsageEvent(
        event_id=_text(item, "id", path, required=True, limit=MAX_EVENT_ID),
        key_id=key_id,
        agent_id=agent_id,
        model=_text(item, "model", path, required=True, limit=256),
        input_tokens=_tokens(item, "input_tokens", path),
        output_tokens=_tokens(item, "output_tokens", path),
        cached_input_tokens=_tokens(item, "cached_input_tokens", path),
        agent_run_id=_text(item, "agent_run_id", path, limit=256),
        occur_time_us=_time(item, path),
    )


def _text(item: dict[str, Any], name: str, path: str, *, limit: int, required: bool = False) -> str:
    value = item.get(name, "")
    if not isinstance(value, str):
        raise EventsInvalid(f"{path}.{name}: must be a string")
    if required and not value:
        raise EventsInvalid(f"{path}.{name}: required")
    if len(value) > limit or _CONTROL.search(value):
        raise EventsInvalid(f"{path}.{name}: at most {limit} printable characters")
    return value


def _tokens(item: dict[str, Any], name: str, path: str) -> int:
    value = item.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise EventsInvalid(f"{path}.{name}: an integer from 0 to {MAX_TOKENS}")
    return value


def _time(item: dict[str, Any], path: str) -> int | None:
    value = item.get("time")
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise ValueError(value)
    except ValueError:
        raise EventsInvalid(f"{path}.time: an RFC 3339 time with a UTC offset") from None
    return int(when.timestamp()) * 1_000_000 + when.microsecond
