"""The plan handed to settle.lua for one newly recorded event (pure).

With a reservation, the script replaces the hold by the actual amount in the windows the hold
touched, each in its cap's currency: the hold released is what Authorize held there (converted
at the rate in force then), the amount counted is the event's, converted at the rate in force
when it was recorded (`event.converted`), so a rate change between hold and charge is settled at
the charge's rate. Without one (or when the hold is gone, already settled, or in a currency the
event has no amount in), it adds the amount to every spend window of the key chain for the
event's time, like Authorize's hold, but only in keys Redis has loaded: an unloaded key is
rebuilt from billing_events, which already hold this event. The script also counts the event
in the tenant's daily counter and throttles the tenant when the counter crosses its threshold.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

import orjson

from keyleash_core.caches import LruCache
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.redis import keyspace
from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.windows import (
    BUCKET_MS,
    ROLLING_24H_MS,
    SLOT_MS,
    SpendCheck,
    SpendCheckCache,
    day_period,
    spend_checks,
)
from metering_service.domain.events import BillingEvent

# A counter outlives its period by a day, as Authorize keeps it (a late settle still finds it).
GRACE_MS = 24 * 3600 * 1000
# A retried Charge finds its marker for as long as any window it counted in lives.
SETTLED_MARKER_TTL_MS = 35 * 24 * 3600 * 1000


def _add_entry(check: SpendCheck, index_of: dict[str, int], now_ms: int) -> dict[str, Any] | None:
    """One spend window to add to, or None when its period is over (nothing left to count)."""
    if check.kind == "rolling":
        if check.bucket < (now_ms - ROLLING_24H_MS) // BUCKET_MS:
            return None
        return {
            "kind": "rolling",
            "k": [index_of[check.keys[0]], index_of[check.keys[1]]],
            "b": check.bucket,
            "ttl": check.ttl_ms,
        }
    if check.is_run or check.reset_ms == 0:
        ttl = check.ttl_ms
    else:
        ttl = check.reset_ms - now_ms + GRACE_MS
        if ttl <= 0:
            return None
    return {"kind": "counter", "k": [index_of[check.keys[0]]], "ttl": ttl}


def settle_call(
    chain: Sequence[KeyRecord],
    event: BillingEvent,
    now_ms: int,
    *,
    duplicate: bool = False,
    parts: SettleParts | None = None,
) -> ScriptCall:
    """KEYS and ARGV of settle.lua for `event` by chain[0] (ancestors follow).

    `duplicate`: the event was recorded before (a retry); the event's settled marker makes the
    script a no-op unless the first attempt never got to settle it. `parts`: where the chain's
    part comes from when it was built already this second.
    """
    amounts = _amounts(event)
    if parts is not None:
        part = parts.part(chain, event.agent_run_id, event.occur_time_ms, now_ms, amounts)
    else:
        part = chain_part(chain, event.agent_run_id, event.occur_time_ms, now_ms, amounts)
    return _call(chain[0], [event], amounts, part, now_ms, duplicate=duplicate)


# At most this many events settle in one script run: each adds a marker to set, and a script
# holds Redis for its whole run (256 markers: well under a millisecond).
MAX_GROUP = 256


def settle_calls(
    items: Sequence[tuple[Sequence[KeyRecord], BillingEvent, bool]],
    now_ms: int,
    parts: SettleParts,
) -> list[tuple[ScriptCall, list[int]]]:
    """The settle.lua runs for a batch of (chain, event, duplicate), each with the indexes of
    the items it settles. New events without a hold that share their chain's part (same key
    chain and policies, run, second, currencies), commit and currency settle as one group:
    their amounts summed, one marker each, so a batch of one key's usage costs Redis one run
    instead of one per event. A duplicate or an event with a hold settles alone (its own path
    in the script)."""
    calls: list[tuple[ScriptCall, list[int]]] = []
    groups: dict[tuple[Any, ...], _Group] = {}
    for index, (chain, event, duplicate) in enumerate(items):
        if duplicate or event.reservation_id:
            calls.append(
                (settle_call(chain, event, now_ms, duplicate=duplicate, parts=parts), [index])
            )
            continue
        amounts = _amounts(event)
        part = parts.part(chain, event.agent_run_id, event.occur_time_ms, now_ms, amounts)
        identity = (part, event.commit_xid, event.amount.currency)
        group = groups.get(identity)
        if group is None:
            group = groups[identity] = _Group(chain, [], dict.fromkeys(amounts, 0), part)
        group.members.append(index)
        for currency, micros in amounts.items():  # the same currencies: they are in the part
            group.amounts[currency] += micros
        if len(group.members) == MAX_GROUP:
            del groups[identity]
            calls.append((_group_call(items, group, now_ms), group.members))
    calls.extend((_group_call(items, group, now_ms), group.members) for group in groups.values())
    return calls


class _Group(NamedTuple):
    chain: Sequence[KeyRecord]
    members: list[int]
    amounts: dict[str, int]  # the members' sums, per currency
    part: tuple[tuple[str, ...], orjson.Fragment]


def _group_call(
    items: Sequence[tuple[Sequence[KeyRecord], BillingEvent, bool]], group: _Group, now_ms: int
) -> ScriptCall:
    events = [items[i][1] for i in group.members]
    return _call(group.chain[0], events, group.amounts, group.part, now_ms, duplicate=False)


def _amounts(event: BillingEvent) -> dict[str, int]:
    """The event's amount in each currency it counts in: its own and each conversion. A spend
    window adds the amount in its cap's currency: plan.amts[entry.cur]."""
    amounts = {cur: c.amount.micros for cur, c in event.converted.items()}
    amounts[event.amount.currency] = event.amount.micros
    return amounts


def _call(
    me: KeyRecord,
    events: Sequence[BillingEvent],
    amounts: dict[str, int],
    part: tuple[tuple[str, ...], orjson.Fragment],
    now_ms: int,
    *,
    duplicate: bool,
) -> ScriptCall:
    """The script run for `events` (one, or a group: the first's marker in KEYS[3], the
    others' after the chain's keys, their ids in plan.more) counting `amounts`."""
    event = events[0]
    tenant = me.tenant_id
    part_keys, links = part
    keys = [
        keyspace.tenant(tenant),
        keyspace.reservation(tenant, event.reservation_id or "-"),
        keyspace.settled_event(tenant, event.event_id),
        *part_keys,
    ]
    more = [e.event_id for e in events[1:]]
    keys.extend(keyspace.settled_event(tenant, eid) for eid in more)
    event_day, _start, _end = day_period(event.occur_time_ms)
    today, _start, today_end = day_period(now_ms)
    plan: dict[str, Any] = {
        "eid": event.event_id,
        "xid": event.commit_xid,
        "dup": 1 if duplicate else 0,
        "amt": amounts[event.amount.currency],
        "cur": event.amount.currency,
        "amts": amounts,
        "key_id": me.key_id,
        "res": 1 if event.reservation_id else 0,
        "day": event_day,
        "today": today,
        "day_end": today_end,
        "chain": links,
        "marker_ttl": SETTLED_MARKER_TTL_MS,
    }
    if more:
        plan["more"] = more
    return ScriptCall(keys, [orjson.dumps(plan)])


# The per-event keys settle.lua takes before the chain's part.
_EVENT_KEYS = 3


def chain_part(
    chain: Sequence[KeyRecord],
    agent_run_id: str,
    occur_ms: int,
    now_ms: int,
    currencies: Collection[str],
    checks: SpendCheckCache | None = None,
) -> tuple[tuple[str, ...], orjson.Fragment]:
    """What a settle plan holds of the chain: the Redis keys after the event's own (the key
    hashes, then each spend window's), and the links (JSON, encoded once) with the windows to
    add to in `currencies`. Placed at the start of the second of `occur_ms` and of `now_ms`:
    window boundaries fall on whole seconds, and a counter's TTL, a day past its period, comes
    out up to a second longer than from the exact time."""
    now_ms = now_ms // SLOT_MS * SLOT_MS
    tenant = chain[0].tenant_id
    keys = [keyspace.key(tenant, r.key_id) for r in chain]
    index_of: dict[str, int] = {}
    links = []
    for record in chain:
        adds = []
        if checks is not None:
            of_record = checks.of(record, agent_run_id, occur_ms)
        else:
            of_record = spend_checks([record], agent_run_id, occur_ms // SLOT_MS * SLOT_MS)
        for check in of_record:
            if check.currency not in currencies:
                continue  # no rate for the pair: Charge refused it unless the amount is 0
            for name in check.keys:
                if name not in index_of:
                    keys.append(name)
                    index_of[name] = _EVENT_KEYS + len(keys)  # Lua indexes from 1
            entry = _add_entry(check, index_of, now_ms)
            if entry is not None:
                entry["cur"] = check.currency
                adds.append(entry)
        links.append({"pv": record.policy_version, "adds": adds})
    return tuple(keys), orjson.Fragment(orjson.dumps(links))


class SettleParts:
    """`chain_part` by (chain, policy versions, run, second of the event, second of now,
    currencies): under load, the events of a key in the same second share one, as Authorize's
    plans share ChainPlans. At most `max_entries` (least recently used dropped)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._checks = SpendCheckCache(max_entries)
        self._parts: LruCache[tuple[Any, ...], tuple[tuple[str, ...], orjson.Fragment]] = LruCache(
            max_entries
        )

    def part(
        self,
        chain: Sequence[KeyRecord],
        agent_run_id: str,
        occur_ms: int,
        now_ms: int,
        currencies: Collection[str],
    ) -> tuple[tuple[str, ...], orjson.Fragment]:
        identity = (
            occur_ms // SLOT_MS,
            now_ms // SLOT_MS,
            agent_run_id,
            chain[0].tenant_id,
            tuple((r.key_id, r.policy_version) for r in chain),
            frozenset(currencies),
        )
        found = self._parts.get(identity)
        if found is None:
            found = chain_part(chain, agent_run_id, occur_ms, now_ms, currencies, self._checks)
            self._parts.put(identity, found)
        return found
