"""The pure parts of approvals: link tokens, grant windows, pending expiry, what a denial asks
for, which cap a request names, and the grant key the decision plan reads."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyleash_core.approval_links import (
    LinkAction,
    LinkRefused,
    peek_link,
    sign_link,
    token_digest,
    verify_link,
)
from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy, SpendCap, SpendWindow
from keyleash_core.reasons import DenyReason
from keyleash_core.redis import keyspace
from keyleash_core.windows import DAY_MS, RUN_TTL_MS, grant_window, spend_checks
from keyleash_gateway import answers
from vault_service.domain.approvals import (
    MAX_PENDING_MS,
    UnknownCap,
    cap_target,
    parse_approval_name,
    pending_expire_ms,
    shortfall,
)
from vault_service.domain.checks import CallRequest
from vault_service.domain.decision import SPEND_FIELDS, build_plan

PEPPER = b"unit-pepper"
NAME = "tenants/acme/approvals/ap_0123456789abcdef01234567"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def key(policy: Policy) -> KeyRecord:
    return KeyRecord(
        key_id="k1", tenant_id="acme", parent_key_id="", key_path=("k1",), agent_id="a",
        label="", scopes=("s",), policy=policy, policy_version=1, state=KeyState.ACTIVE,
        create_time_ms=0, expire_time_ms=10**13,
    )  # fmt: skip


def test_a_signed_link_verifies_until_it_expires() -> None:
    token = sign_link(PEPPER, NAME, LinkAction.APPROVE, 2_000)
    claim = verify_link(PEPPER, token, 1_999)
    assert (claim.approval_name, claim.action, claim.expire_ms) == (NAME, LinkAction.APPROVE, 2000)
    with pytest.raises(LinkRefused, match="expired"):
        verify_link(PEPPER, token, 2_000)


def test_links_are_unique_and_only_their_digest_is_kept() -> None:
    one = sign_link(PEPPER, NAME, LinkAction.DENY, 2_000)
    two = sign_link(PEPPER, NAME, LinkAction.DENY, 2_000)
    assert one != two and token_digest(one) != token_digest(two)
    assert len(token_digest(one)) == 32 and one.encode() not in token_digest(one)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: t.replace("kla1.", "kla2."),  # version
        lambda t: t.split(".")[0] + "." + t.split(".")[2],  # no payload
        lambda t: "garbage",
        lambda t: "",
    ],
)
def test_a_tampered_link_is_refused(tamper: object) -> None:
    token = sign_link(PEPPER, NAME, LinkAction.APPROVE, 2_000)
    with pytest.raises(LinkRefused):
        verify_link(PEPPER, tamper(token), 1_000)  # type: ignore[operator]


def test_a_link_signed_under_another_pepper_or_for_another_action_is_not_this_one() -> None:
    token = sign_link(b"other", NAME, LinkAction.APPROVE, 2_000)
    with pytest.raises(LinkRefused, match="signature"):
        verify_link(PEPPER, token, 1_000)
    # The payload names the action; editing it breaks the signature.
    good = sign_link(PEPPER, NAME, LinkAction.DENY, 2_000)
    prefix, payload, signature = good.split(".")
    claimed = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    claimed[1] = "approve"
    forged = base64.urlsafe_b64encode(orjson.dumps(claimed)).decode().rstrip("=")
    with pytest.raises(LinkRefused):
        verify_link(PEPPER, f"{prefix}.{forged}.{signature}", 1_000)


@given(st.text(max_size=200))
def test_peek_never_raises(token: str) -> None:
    claim = peek_link(token)
    assert claim is None or isinstance(claim.approval_name, str)


def test_grant_windows_end_at_the_reset_of_the_denied_window() -> None:
    now = ms("2026-12-31T18:30:00")
    day = grant_window(SpendWindow.CALENDAR_DAY, now)
    assert (day.window_id, day.end_ms) == ("d20261231", ms("2027-01-01T00:00:00"))
    assert day.ttl_ms == day.end_ms - now + DAY_MS
    month = grant_window(SpendWindow.CALENDAR_MONTH, now)
    assert (month.window_id, month.end_ms) == ("m202612", ms("2027-01-01T00:00:00"))
    # A rolling window never resets: its grant is for the UTC day.
    assert grant_window(SpendWindow.ROLLING_24H, now).window_id == "d20261231"
    assert grant_window(SpendWindow.LIFETIME, now) == grant_window(SpendWindow.LIFETIME, 0)
    assert grant_window(SpendWindow.LIFETIME, now).end_ms == 0
    run = grant_window(None, now, "run-7")
    assert (run.window_id, run.end_ms, run.ttl_ms) == ("run-7", 0, RUN_TTL_MS)


def test_pending_requests_expire_with_their_window_or_after_a_day() -> None:
    evening = ms("2026-12-02T23:00:00")
    day = grant_window(SpendWindow.CALENDAR_DAY, evening)
    assert pending_expire_ms(evening, day) == ms("2026-12-03T00:00:00")
    morning = ms("2026-12-02T01:00:00")
    month = grant_window(SpendWindow.CALENDAR_MONTH, morning)
    assert pending_expire_ms(morning, month) == morning + MAX_PENDING_MS
    assert pending_expire_ms(morning, grant_window(None, morning, "r")) == morning + MAX_PENDING_MS


@pytest.mark.parametrize(
    ("limit", "used", "cost", "asked"),
    [(10, 10, 4, 4), (10, 8, 4, 2), (10, 12, 0, 2), (10, 10, 0, 1), (10, 3, 0, 1)],
)
def test_a_denial_asks_for_what_it_misses(limit: int, used: int, cost: int, asked: int) -> None:
    assert shortfall(limit, used, cost) == asked


def test_cap_target_names_a_cap_the_key_has() -> None:
    now = ms("2026-12-02T12:00:00")
    record = key(
        Policy(
            spend_caps=(SpendCap(Money("EUR", 5), SpendWindow.CALENDAR_MONTH),),
            run_spend_cap=Money("USD", 1),
        )
    )
    month = cap_target(record, "spend/calendar_month", "", now)
    assert (month.currency, month.window, month.grant.window_id) == (
        "EUR", SpendWindow.CALENDAR_MONTH, "m202612",
    )  # fmt: skip
    assert cap_target(record, "run", "r1", now).grant.window_id == "r1"
    for quota, run in (("spend/calendar_day", ""), ("run", ""), ("rate/60s", "")):
        with pytest.raises(UnknownCap):
            cap_target(record, quota, run, now)


def test_approval_names_parse_strictly() -> None:
    assert parse_approval_name(NAME) == ("acme", "ap_0123456789abcdef01234567")
    for bad in ("tenants/acme/approvals/x", "tenants/acme/keys/ap_0123456789abcdef01234567", ""):
        assert parse_approval_name(bad) is None


def test_the_plan_reads_each_caps_grant_of_the_current_window() -> None:
    now = ms("2026-12-02T12:00:00")
    record = key(Policy(spend_caps=(SpendCap(Money("USD", 5), SpendWindow.CALENDAR_DAY),)))
    (check,) = spend_checks([record], "", now)
    assert check.grant_key == keyspace.spend_grant(
        "acme", "k1", "USD", "spend/calendar_day", "d20261202"
    )
    (tomorrow,) = spend_checks([record], "", now + DAY_MS)
    assert tomorrow.grant_key.endswith(":d20261203")
    call = CallRequest("s", "", "", "", Money("USD", 1), "", {}, "")
    plan = build_plan([record], call, now_ms=now, decision_id="d", reservation_id="r")
    spends = orjson.loads(plan.args[1])["spends"]
    assert plan.keys[spends[0][SPEND_FIELDS.index("grant")] - 1] == check.grant_key


def test_the_gateways_budget_answer_names_the_approval() -> None:
    named = answers.denied(DenyReason.SPEND_CAP_EXCEEDED, "cap", approval=NAME)
    assert named.status == 402 and orjson.loads(named.body)["error"]["approval"] == NAME
    plain = answers.denied(DenyReason.SPEND_CAP_EXCEEDED, "cap")
    assert "approval" not in orjson.loads(plain.body)["error"]
