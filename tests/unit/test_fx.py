"""The FX table and the one conversion rule (pure): exact, rounded up, never a float."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyleash_core.fx import (
    MAX_RATE_PPB,
    PPB,
    Rate,
    conversions,
    convert_up,
    parse_rate,
    shipped_table,
    with_overrides,
)
from keyleash_core.money import MAX_ABS_MICROS, Money, is_currency_code

SHIPPED = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD")


@given(micros=st.integers(-MAX_ABS_MICROS, MAX_ABS_MICROS), ppb=st.integers(1, MAX_RATE_PPB))
def test_a_conversion_is_never_below_the_exact_value_nor_a_micro_above(
    micros: int, ppb: int
) -> None:
    exact = Fraction(micros) * Fraction(ppb, PPB)
    converted = convert_up(micros, ppb)
    assert exact <= converted < exact + 1


@pytest.mark.parametrize(
    ("text", "ppb"),
    [("1.08", 1_080_000_000), ("0.000000001", 1), ("149.253731343", 149_253_731_343),
     (" 2 ", 2 * PPB), ("1000000", MAX_RATE_PPB)],
)  # fmt: skip
def test_rates_parse_exactly(text: str, ppb: int) -> None:
    assert parse_rate(text) == ppb
    assert Rate("A", "B", ppb, "admin").decimal == text.strip()


@pytest.mark.parametrize(
    "text", ["", "abc", "0", "-1", "1.0000000001", "1000000.000000001", "NaN", "Infinity", "1e-10"]
)
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_the_shipped_table_converts_every_pair_of_its_currencies() -> None:
    table = shipped_table()
    assert table.version == "2026-12-01"
    for base in SHIPPED:
        assert is_currency_code(base)
        for quote in SHIPPED:
            if base != quote:
                rate = table.rate(base, quote)
                assert rate is not None and rate.source == "shipped", (base, quote)
    assert table.rate("EUR", "USD") == Rate("EUR", "USD", 1_080_000_000, "shipped")


def test_an_override_wins_and_names_a_new_version() -> None:
    table = with_overrides([Rate("EUR", "USD", 1_100_000_000, "admin")], 7)
    assert table.version == "2026-12-01+r7"
    assert table.rate("EUR", "USD") == Rate("EUR", "USD", 1_100_000_000, "admin")
    assert table.rate("GBP", "USD") == shipped_table().rate("GBP", "USD")
    assert with_overrides([], 0) is shipped_table()


def test_conversions_leave_out_unknown_pairs_and_the_own_currency() -> None:
    found = conversions(shipped_table(), Money("EUR", 1), ["USD", "EUR", "BRL"])
    assert list(found) == ["USD"]
    assert found["USD"].amount == Money("USD", 2)  # 1.08 micros, rounded up
    assert (found["USD"].rate, found["USD"].version) == ("1.08", "2026-12-01")
