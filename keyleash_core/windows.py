"""Spend windows: which Redis counters a call is checked against and held in. Pure: the caller
passes the time. Shared by Authorize (check and hold) and Charge (settle or add)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from keyleash_core.caches import LruCache
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.policy import SpendWindow
from keyleash_core.redis import keyspace
from keyleash_core.times import datetime_from_ms, ms_from_datetime

BUCKET_MS = 60_000
ROLLING_24H_MS = 24 * 3600 * 1000
RUN_TTL_MS = 35 * 24 * 3600 * 1000
LIFETIME_TTL_MS = 0  # no expiry


@dataclass(frozen=True)
class SpendCheck:
    """One spend quota touched by a call.

    kind "rolling": keys = (bucket hash, bucket index); the window is the minute buckets from
    `first_bucket` on, so up to one minute of older spend still counts (errs on the safe side).
    kind "counter": keys = (counter,), one calendar period, the lifetime, or a run.
    """

    kind: str
    keys: tuple[str, ...]
    limit_micros: int
    currency: str
    subject: str
    quota: str
    is_run: bool
    reset_ms: int
    ttl_ms: int
    bucket: int = 0
    first_bucket: int = 0
    # The approval grant that raises this cap in this window only (keyspace.spend_grant).
    grant_key: str = ""


@dataclass(frozen=True)
class GrantWindow:
    """The window an approval grant of one cap lives in: its id, when it reverts (0: never
    by time: a lifetime cap, a run) and how long Redis keeps the grant's counter."""

    window_id: str
    end_ms: int
    ttl_ms: int


def grant_window(window: SpendWindow | None, now_ms: int, agent_run_id: str = "") -> GrantWindow:
    """Where a grant made at `now_ms` for a cap of `window` (None: the run cap) lasts.

    Calendar windows: until the period resets. A rolling 24 h window never resets, so its
    grant lasts until the end of the UTC day ("bumped for the day"). Lifetime: for good. Run:
    for that run (as long as Redis keeps run counters).
    """
    if window is None:
        return GrantWindow(agent_run_id, 0, RUN_TTL_MS)
    if window is SpendWindow.LIFETIME:
        return GrantWindow("life", 0, LIFETIME_TTL_MS)
    period, _start, end = (
        month_period(now_ms) if window is SpendWindow.CALENDAR_MONTH else day_period(now_ms)
    )
    return GrantWindow(period, end, end - now_ms + DAY_MS)


DAY_MS = 24 * 3600 * 1000


def day_period(now_ms: int) -> tuple[str, int, int]:
    """("d20261128", start, end) of the UTC day holding now_ms."""
    return _day_period(now_ms // DAY_MS)


def month_period(now_ms: int) -> tuple[str, int, int]:
    """("m202611", start, end) of the UTC month holding now_ms."""
    return _month_period(now_ms // DAY_MS)


# Every Authorize and settle asks for the day (and often the month) of "now"; Unix time has
# exactly DAY_MS per UTC day, so both are memoised by day number.
@lru_cache(maxsize=64)
def _day_period(day: int) -> tuple[str, int, int]:
    start = day * DAY_MS
    return datetime_from_ms(start).strftime("d%Y%m%d"), start, start + DAY_MS


@lru_cache(maxsize=64)
def _month_period(day: int) -> tuple[str, int, int]:
    start = datetime_from_ms(day * DAY_MS).replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start.strftime("m%Y%m"), ms_from_datetime(start), ms_from_datetime(following)


def window_start_ms(window: SpendWindow, now_ms: int) -> int:
    """Where a window begins, for rebuilding it from billing events (0 = since ever)."""
    if window is SpendWindow.ROLLING_24H:
        return (now_ms - ROLLING_24H_MS) // BUCKET_MS * BUCKET_MS
    if window is SpendWindow.CALENDAR_DAY:
        return day_period(now_ms)[1]
    if window is SpendWindow.CALENDAR_MONTH:
        return month_period(now_ms)[1]
    return 0


def cap_check(record: KeyRecord, cap_index: int, now_ms: int) -> SpendCheck:
    cap = record.policy.spend_caps[cap_index]
    tenant, key_id, currency = record.tenant_id, record.key_id, cap.limit.currency
    grant = grant_window(cap.window, now_ms)
    common = {
        "limit_micros": cap.limit.micros,
        "currency": currency,
        "subject": record.name,
        "quota": cap.quota_name,
        "is_run": False,
        "grant_key": keyspace.spend_grant(
            tenant, key_id, currency, cap.quota_name, grant.window_id
        ),
    }
    if cap.window is SpendWindow.ROLLING_24H:
        bucket = now_ms // BUCKET_MS
        first = (now_ms - ROLLING_24H_MS) // BUCKET_MS
        return SpendCheck(
            kind="rolling",
            keys=keyspace.rolling_spend(tenant, key_id, currency),
            reset_ms=(first + 1) * BUCKET_MS + ROLLING_24H_MS,
            ttl_ms=ROLLING_24H_MS + 2 * BUCKET_MS,
            bucket=bucket,
            first_bucket=first,
            **common,  # type: ignore[arg-type]
        )
    if cap.window is SpendWindow.LIFETIME:
        period, reset, ttl = "life", 0, LIFETIME_TTL_MS
    else:
        period, _start, end = (
            day_period(now_ms) if cap.window is SpendWindow.CALENDAR_DAY else month_period(now_ms)
        )
        # Kept a day past the period so a late settle of a hold still finds its counter.
        reset, ttl = end, end - now_ms + 24 * 3600 * 1000
    return SpendCheck(
        kind="counter",
        keys=(keyspace.period_spend(tenant, key_id, currency, period),),
        reset_ms=reset,
        ttl_ms=ttl,
        **common,  # type: ignore[arg-type]
    )


def run_check(record: KeyRecord, agent_run_id: str) -> SpendCheck | None:
    cap = record.policy.run_spend_cap
    if cap is None:
        return None
    return SpendCheck(
        kind="counter",
        keys=(keyspace.run_spend(record.tenant_id, record.key_id, cap.currency, agent_run_id),),
        limit_micros=cap.micros,
        currency=cap.currency,
        subject=record.name,
        quota="run",
        is_run=True,
        reset_ms=0,
        ttl_ms=RUN_TTL_MS,
        grant_key=keyspace.spend_grant(
            record.tenant_id, record.key_id, cap.currency, "run", agent_run_id
        ),
    )


def spend_checks(chain: Sequence[KeyRecord], agent_run_id: str, now_ms: int) -> list[SpendCheck]:
    """Every spend quota of the key and its ancestors (roll-up), in chain order."""
    checks: list[SpendCheck] = []
    for record in chain:
        checks.extend(cap_check(record, i, now_ms) for i in range(len(record.policy.spend_caps)))
        run = run_check(record, agent_run_id)
        if run is not None:
            checks.append(run)
    return checks


SLOT_MS = 1_000
"""Every window boundary (minute buckets, UTC days and months) falls on a whole second, so the
spend checks of a key are the same for every millisecond of a second, except a counter's TTL,
which is up to a second longer when computed from the second's start (the counter outlives its
period by a day anyway). So they may be built once per second (`SpendCheckCache`, the vault's
`ChainPlans`)."""


class SpendCheckCache:
    """`spend_checks` of one key by (key, policy version, run, second), built at the second's
    start: each costs ~5 µs per cap to build, and under load every event of a key in the same
    second reuses them. At most `max_entries` (least recently used dropped)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._checks: LruCache[tuple[Any, ...], list[SpendCheck]] = LruCache(max_entries)

    def __len__(self) -> int:
        return len(self._checks)

    def of(self, record: KeyRecord, agent_run_id: str, now_ms: int) -> list[SpendCheck]:
        slot = now_ms // SLOT_MS
        identity = (slot, agent_run_id, record.tenant_id, record.key_id, record.policy_version)
        found = self._checks.get(identity)
        if found is None:
            found = spend_checks([record], agent_run_id, slot * SLOT_MS)
            self._checks.put(identity, found)
        return found
