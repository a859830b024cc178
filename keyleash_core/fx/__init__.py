"""The versioned FX table: exchange rates per currency pair, and the one conversion rule.

Caps are enforced in the cap's currency. A call estimated (or charged) in another currency is
converted into it at the rate in force: the shipped table (rates.json, never fetched at run
time) overlaid with the rates an admin set (SetExchangeRate, `fx_rates` in Postgres).

A rate is an exact decimal with at most 9 places, kept as integer parts per billion, so a
conversion never touches a float: converted = ceil(micros x ppb / 1e9), rounded up (towards
+inf) so a hold or a charge is never counted below its exact value, and at most 1 micro above.
Only the pairs listed convert (no triangulation): an unknown pair is a denial, not a guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

from keyleash_core.keyrecord import KeyRecord
from keyleash_core.money import Money

PPB = 10**9
MAX_RATE_PPB = 10**6 * PPB  # a million units of quote per unit of base: beyond any real pair


@dataclass(frozen=True)
class Rate:
    """Units of `quote` one unit of `base` buys, in parts per billion."""

    base: str
    quote: str
    ppb: int
    source: str  # "shipped" or "admin"

    @property
    def decimal(self) -> str:
        """The rate as an exact decimal string, e.g. "1.08"."""
        return format(Decimal(self.ppb).scaleb(-9).normalize(), "f")


@dataclass(frozen=True)
class FxTable:
    """Every rate in force and the version naming this state of the table."""

    version: str
    rates: Mapping[tuple[str, str], Rate]

    def rate(self, base: str, quote: str) -> Rate | None:
        return self.rates.get((base, quote))


def convert_up(micros: int, ppb: int) -> int:
    """`micros` of base in micros of quote at `ppb`, rounded up (never below the exact value)."""
    return -(-micros * ppb // PPB)


def parse_rate(text: str) -> int:
    """A decimal rate string ("1.08") as parts per billion; ValueError when it is not a positive
    decimal of at most 9 places within MAX_RATE_PPB."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as error:
        raise ValueError(f"{text!r} is not a decimal number") from error
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{text!r} is not a positive rate")
    ppb = value.scaleb(9)
    if ppb != ppb.to_integral_value():
        raise ValueError(f"{text!r} has more than 9 decimal places")
    if ppb > MAX_RATE_PPB:
        raise ValueError(f"{text!r} is above {MAX_RATE_PPB // PPB}")
    return int(ppb)


@cache
def shipped_table() -> FxTable:
    """The table shipped in rates.json (version and pairs "BASE/QUOTE")."""
    raw = resources.files("keyleash_core.fx").joinpath("rates.json").read_text("utf-8")
    data = json.loads(raw)
    rates = {}
    for pair, text in data["rates"].items():
        base, quote = pair.split("/")
        rates[(base, quote)] = Rate(base, quote, parse_rate(text), "shipped")
    return FxTable(str(data["version"]), rates)


def with_overrides(overrides: list[Rate], revision: int) -> FxTable:
    """The shipped table overlaid with admin rates; revision 0 (no override) keeps its version."""
    shipped = shipped_table()
    if revision == 0:
        return shipped
    rates = dict(shipped.rates)
    rates.update({(r.base, r.quote): r for r in overrides})
    return FxTable(f"{shipped.version}+r{revision}", rates)


@dataclass(frozen=True)
class Conversion:
    """An amount converted into another currency, with the rate and table version used."""

    amount: Money
    rate: str
    version: str


def conversions(table: FxTable, money: Money, currencies: Iterable[str]) -> dict[str, Conversion]:
    """`money` in each of `currencies` (but its own) the table has a rate for; others omitted."""
    found = {}
    for currency in sorted(set(currencies) - {money.currency}):
        rate = table.rate(money.currency, currency)
        if rate is not None:
            micros = convert_up(money.micros, rate.ppb)
            found[currency] = Conversion(Money(currency, micros), rate.decimal, table.version)
    return found


def cap_currencies(chain: Sequence[KeyRecord]) -> frozenset[str]:
    """Every currency a cap (spend, run, per call) of the key chain is in."""
    if len(chain) == 1:
        return chain[0].policy.cap_currencies
    return frozenset().union(*(record.policy.cap_currencies for record in chain))
