"""The console's pure parts: money text, the tree, bars, the chart, the CSV, sessions."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from keyleash.metering.v1 import metering_pb2 as P
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_console import views
from keyleash_console.sessions import SessionStore


def test_money_text_is_exact() -> None:
    assert views.money_text(12_500_000, "USD") == "12.50 USD"
    assert views.money_text(1, "USD") == "0.000001 USD"
    assert views.money_text(-3_000_000, "EUR") == "-3.00 EUR"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_text_round_trips(micros: int) -> None:
    number = views.money_text(micros, "USD").split()[0]
    whole, _, fraction = number.lstrip("-").partition(".")
    back = int(whole) * 1_000_000 + int(fraction.ljust(6, "0"))
    assert (-back if number.startswith("-") else back) == micros


def key(key_id: str, parent: str = "", at: int = 0) -> V.Key:
    made = V.Key(key_id=key_id, parent_key_id=parent)
    made.create_time.seconds = at
    return made


def test_the_tree_puts_children_under_parents_oldest_first() -> None:
    keys = [
        key("c2", "p", 3),
        key("p", "", 1),
        key("g", "c1", 4),
        key("c1", "p", 2),
        key("lost", "gone", 0),
    ]
    rows = views.key_tree(keys)
    assert [(r.key.key_id, r.depth, r.orphan) for r in rows] == [
        ("lost", 0, True),
        ("p", 0, False),
        ("c1", 1, False),
        ("g", 2, False),
        ("c2", 1, False),
    ]


def test_usage_bars_are_capped_at_full() -> None:
    bars = views.usage_bars(
        [
            V.QuotaStatus(quota="spend/calendar_day", unit="USD", limit=10_000_000, used=2_500_000),
            V.QuotaStatus(quota="rate/60s", unit="requests", limit=2, used=5),
        ]
    )
    assert [(b.percent, b.used, b.limit) for b in bars] == [
        (25, "2.50 USD", "10.00 USD"),
        (100, "5 requests", "2 requests"),
    ]


def test_the_tallest_bar_fills_the_chart() -> None:
    bars = views.chart_bars([("a", 0), ("b", 5_000_000), ("c", 10_000_000)], "USD")
    assert [b.height for b in bars] == [0, (views.CHART_BASE - 10) // 2, views.CHART_BASE - 10]
    assert bars[2].title == "c: 10.00 USD"
    assert all(b.y + b.height == views.CHART_BASE for b in bars)


def test_the_ledger_csv_is_in_time_order_and_defuses_formulas() -> None:
    decision = V.Authorization(
        decision_id="d1",
        key_id="k",
        decision=V.DECISION_ALLOW,
        vendor="stripe",
        method="POST",
        path="=cmd()",
        estimated_cost=money_pb2.Money(currency_code="USD", micros=5),
        settled_cost=money_pb2.Money(currency_code="USD", micros=4),
        settled_events=1,
    )
    decision.decision_time.seconds = 10
    event = P.BillingEvent(
        event_id="e1",
        key_id="k",
        kind=P.BillingEvent.KIND_CHARGE,
        amount=money_pb2.Money(currency_code="USD", micros=4),
    )
    event.occur_time.seconds = 11
    rows = list(
        csv.DictReader(io.StringIO(views.ledger_csv(views.ledger_rows([decision], [event]))))
    )
    assert [r["id"] for r in rows] == ["d1", "e1"]
    assert rows[0]["endpoint"] == "POST =cmd()"  # only a leading formula sign is defused
    assert rows[0]["estimated_micros"] == "5" and rows[0]["amount_micros"] == "4"
    assert rows[1]["what"] == "CHARGE" and rows[1]["estimated_micros"] == ""


def test_the_ledger_csv_quotes_a_leading_formula() -> None:
    event = P.BillingEvent(event_id="e", endpoint='=HYPERLINK("x")')
    rows = list(csv.DictReader(io.StringIO(views.ledger_csv(views.ledger_rows([], [event])))))
    assert rows[0]["endpoint"] == '\'=HYPERLINK("x")'


def test_a_session_expires_and_its_token_is_not_in_its_repr() -> None:
    now = [1000.0]
    store = SessionStore(60, clock=lambda: now[0])
    session = store.open("the-admin-token")
    assert "the-admin-token" not in repr(session) and session.csrf_token not in repr(session)
    assert store.find(session.session_id) is session
    assert store.seconds_left(session) == 60
    now[0] += 60
    assert store.find(session.session_id) is None
    assert store.find("") is None


def test_csrf_tokens_compare_exactly() -> None:
    session = SessionStore(60).open("t")
    assert session.csrf_matches(session.csrf_token)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf_token[:-1])
