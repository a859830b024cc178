"""Window arithmetic and the decision plan, with an explicit clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy, RateLimit, SpendCap, SpendWindow
from keyleash_core.reasons import DenyReason
from keyleash_core.windows import BUCKET_MS, day_period, month_period, spend_checks
from vault_service.domain.checks import CallRequest
from vault_service.domain.decision import OutcomeKind, build_plan, parse_outcome


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
    assert plan.args[0] == str(now)
    assert body["cost"] == 3 and body["memo"] == 1 and [c["pv"] for c in body["chain"]] == [3, 3]
    assert all(name.startswith("kl:{acme}:") for name in plan.keys)
    assert plan.keys[body["spends"][0]["k"][0] - 1] == "kl:{acme}:sp:p:USD:life"
    denied = parse_outcome(
        '{"r":"D","reason":"RATE_LIMITED","quotas":[["n","rate/1s","requests","2","2","0","5"]],'
        '"retry_ms":"5","did":"d1"}'
    )
    assert denied.kind is OutcomeKind.DENY and denied.reason is DenyReason.RATE_LIMITED
    assert denied.quotas[0].limit == 2 and denied.retry_after_ms == 5
    assert parse_outcome('{"r":"A","did":"d","res_id":"","quotas":{}}').quotas == []
    assert parse_outcome('{"r":"S","idx":"2"}').chain_index == 2
