"""Window arithmetic and the decision plan, with an explicit clock."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy, RateLimit, SpendCap, SpendWindow
from keyleash_core.reasons import DenyReason
from keyleash_core.redis.scripts import script_source
from keyleash_core.windows import (
    BUCKET_MS,
    SLOT_MS,
    SpendCheckCache,
    day_period,
    month_period,
    spend_checks,
)
from vault_service.domain.checks import CallRequest
from vault_service.domain.decision import (
    LINK_FIELDS,
    SPEND_FIELDS,
    ChainPlans,
    OutcomeKind,
    build_plan,
    parse_outcome,
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_calendar_periods() -> None:
    now = ms("2026-12-31T23:59:59.999")
    assert day_period(now) == ("d20261231", ms("2026-12-31T00:00:00"), ms("2027-01-01T00:00:00"))
    assert month_period(now) == ("m202612", ms("2026-12-01T00:00:00"), ms("2027-01-01T00:00:00"))
    assert month_period(ms("2028-02-10T00:00:00"))[2] == ms("2028-03-01T00:00:00")


@given(st.integers(min_value=0, max_value=ms("2200-01-01T00:00:00")))
def test_memoised_periods_match_the_calendar(now_ms: int) -> None:
    moment = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)

    def as_ms(when: datetime) -> int:
        return int(when.timestamp() * 1000)

    assert day_period(now_ms) == (
        day.strftime("d%Y%m%d"),
        as_ms(day),
        as_ms(day + timedelta(days=1)),
    )
    assert month_period(now_ms) == (month.strftime("m%Y%m"), as_ms(month), as_ms(next_month))


def key(key_id: str, path: tuple[str, ...], policy: Policy) -> KeyRecord:
    return KeyRecord(
        key_id=key_id, tenant_id="acme", parent_key_id=path[-2] if len(path) > 1 else "",
        key_path=path, agent_id="a", label="", scopes=("s",), policy=policy, policy_version=3,
        state=KeyState.ACTIVE, create_time_ms=0, expire_time_ms=10**13,
    )  # fmt: skip


def test_spend_checks_roll_up_the_chain() -> None:
    now = ms("2026-11-28T12:00:30")
    parent = key(
        "p", ("p",), Policy(spend_caps=(SpendCap(Money("USD", 5), SpendWindow.CALENDAR_MONTH),))
    )
    child = key(
        "c",
        ("p", "c"),
        Policy(
            spend_caps=(SpendCap(Money("USD", 2), SpendWindow.ROLLING_24H),),
            run_spend_cap=Money("USD", 1),
        ),
    )
    checks = spend_checks([child, parent], "run-7", now)
    assert [(c.subject, c.quota) for c in checks] == [
        ("tenants/acme/keys/c", "spend/rolling_24h"),
        ("tenants/acme/keys/c", "run"),
        ("tenants/acme/keys/p", "spend/calendar_month"),
    ]
    rolling = checks[0]
    assert rolling.bucket == now // BUCKET_MS
    assert rolling.first_bucket == (now - 86_400_000) // BUCKET_MS
    assert all("{acme}" in name for c in checks for name in c.keys)
    assert checks[2].keys == ("kl:{acme}:sp:p:USD:m202611",)


def test_plan_names_every_key_it_touches_and_parses_answers() -> None:
    now = ms("2026-11-28T12:00:00")
    me = key("c", ("p", "c"), Policy(rate_limits=(RateLimit(2, 1000),)))
    parent = key("p", ("p",), Policy(spend_caps=(SpendCap(Money("USD", 5), SpendWindow.LIFETIME),)))
    request = CallRequest("s", "", "", "", Money("USD", 3), "", {}, "rid")
    plan = build_plan([me, parent], request, now_ms=now, decision_id="d1", reservation_id="r1")
    body = json.loads(plan.args[1])
    links = [dict(zip(LINK_FIELDS, link, strict=True)) for link in body["chain"]]
    spends = [dict(zip(SPEND_FIELDS, spend, strict=True)) for spend in body["spends"]]
    assert plan.args[0] == str(now)
    assert body["cost"] == 3 and body["memo"] == 1 and [c["pv"] for c in links] == [3, 3]
    assert all(name.startswith("kl:{acme}:") for name in plan.keys)
    assert plan.keys[spends[0]["keys"][0] - 1] == "kl:{acme}:sp:p:USD:life"
    assert links[spends[0]["link"] - 1]["name"] == parent.name  # the cap's subject
    denied = parse_outcome(
        '{"r":"D","reason":"RATE_LIMITED","quotas":[["n","rate/1s","requests","2","2","0","5"]],'
        '"retry_ms":"5","did":"d1"}'
    )
    assert denied.kind is OutcomeKind.DENY and denied.reason is DenyReason.RATE_LIMITED
    assert denied.quotas[0].limit == 2 and denied.retry_after_ms == 5
    assert parse_outcome('{"r":"A","did":"d","res_id":"","quotas":{}}').quotas == []
    assert parse_outcome('{"r":"S","idx":"2"}').chain_index == 2


def test_the_script_names_the_plans_array_fields_in_the_vaults_order() -> None:
    script = resources.files("keyleash_core.redis.lua").joinpath("authorize.lua").read_text()
    for prefix, fields in (("LINK", LINK_FIELDS), ("SPEND", SPEND_FIELDS)):
        positions: dict[str, int] = {}
        pattern = rf"^local ({prefix}_[A-Z_, ]+) = ([0-9, ]+)$"
        for names, numbers in re.findall(pattern, script, re.MULTILINE):
            for name, number in zip(names.split(", "), numbers.split(", "), strict=True):
                positions[name.removeprefix(prefix + "_").lower()] = int(number)
        assert positions == {name: i for i, name in enumerate(fields, start=1)}


def test_scripts_get_their_shared_code_in_place_of_the_include_line() -> None:
    for name in ("authorize", "settle"):
        source = script_source(name)
        assert source.count("local function keep_alive(") == 1
        assert re.search(r"^--!include", source, re.MULTILINE) is None


def caps_of_every_kind(key_id: str, path: tuple[str, ...]) -> KeyRecord:
    windows = (SpendWindow.CALENDAR_DAY, SpendWindow.CALENDAR_MONTH, SpendWindow.ROLLING_24H)
    return key(
        key_id,
        path,
        Policy(
            rate_limits=(RateLimit(5, 1000),),
            spend_caps=(
                *(SpendCap(Money("USD", 9), w) for w in windows),
                SpendCap(Money("EUR", 9), SpendWindow.LIFETIME),
            ),
            run_spend_cap=Money("USD", 4),
        ),
    )


@given(st.integers(min_value=ms("2020-01-01T00:00:00"), max_value=ms("2100-01-01T00:00:00")))
def test_within_a_second_the_spend_checks_differ_only_by_a_longer_ttl(now_ms: int) -> None:
    # Why ChainPlans may build a chain's part once per second: every bucket, period, reset and
    # grant window is the same at the second's start; only a counter's TTL is (a little) longer.
    chain = [caps_of_every_kind("c", ("p", "c")), caps_of_every_kind("p", ("p",))]
    start = now_ms // SLOT_MS * SLOT_MS
    for exact, slotted in zip(
        spend_checks(chain, "run-1", now_ms), spend_checks(chain, "run-1", start), strict=True
    ):
        assert replace(slotted, ttl_ms=exact.ttl_ms) == exact
        assert 0 <= slotted.ttl_ms - exact.ttl_ms < SLOT_MS


def test_chain_plans_reuse_a_part_within_the_second_and_rebuild_on_any_change() -> None:
    now = ms("2026-11-28T12:00:00.250")
    chain = [caps_of_every_kind("c", ("p", "c")), caps_of_every_kind("p", ("p",))]
    request = CallRequest("s", "", "", "", Money("USD", 3), "run-1", {}, "")
    plans = ChainPlans(max_entries=3)

    def plan(at: int, records: list[KeyRecord] = chain, run: str = "run-1") -> tuple[Any, ...]:
        call = request._replace(agent_run_id=run)
        cached = build_plan(
            records, call, now_ms=at, decision_id="d", reservation_id="r",
            converted={"EUR": 4}, plans=plans,
        )  # fmt: skip
        fresh = build_plan(
            records, call, now_ms=at, decision_id="d", reservation_id="r", converted={"EUR": 4}
        )
        assert cached == fresh  # the cache changes no plan
        return tuple(cached.keys)

    first = plan(now)
    part = plans.part(chain, "run-1", now)
    assert plans.part(chain, "run-1", now + 749) is part  # same second
    assert plans.part(chain, "run-1", now + 750) is not part  # the next one
    assert plan(now + 700) == first
    assert plan(now, run="run-2") != first  # the run cap's counter is the run's
    updated = [replace(chain[0], policy_version=4), chain[1]]
    assert plans.part(updated, "run-1", now) is not plans.part(chain, "run-1", now)
    body = json.loads(
        build_plan(
            chain, request, now_ms=now, decision_id="d", reservation_id="r",
            converted={"EUR": 4}, plans=plans,
        ).args[1]
    )  # fmt: skip
    assert body["h"] == {"EUR": 4, "USD": 3}
    assert len(plans) <= 3  # bounded


def test_a_cap_in_a_currency_without_a_hold_fails_the_plan() -> None:
    chain = [caps_of_every_kind("p", ("p",))]
    request = CallRequest("s", "", "", "", Money("USD", 3), "", {}, "")
    with pytest.raises(KeyError, match="EUR"):
        build_plan(chain, request, now_ms=0, decision_id="d", reservation_id="r")


def test_the_spend_check_cache_reuses_a_keys_checks_within_the_second() -> None:
    now = ms("2026-11-28T12:00:00.250")
    record = caps_of_every_kind("p", ("p",))
    cache = SpendCheckCache(max_entries=2)
    checks = cache.of(record, "run-1", now)
    assert checks == spend_checks([record], "run-1", now // SLOT_MS * SLOT_MS)
    assert cache.of(record, "run-1", now + 749) is checks
    assert cache.of(record, "run-1", now + 750) is not checks  # the next second
    assert cache.of(record, "run-2", now) != checks  # the run cap's counter is the run's
    assert cache.of(replace(record, policy_version=4), "run-1", now) is not checks
    assert len(cache) <= 2  # bounded
