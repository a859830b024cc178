"""Money: integer micros plus an ISO-4217 code. Never a float."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

MICROS_PER_UNIT = 1_000_000
# Amounts are bounded well inside int64 so sums of many events cannot overflow either.
MAX_ABS_MICROS = 10**15


@dataclass(frozen=True, order=True)
class Money:
    """An amount of `currency` in micro-units."""

    currency: str
    micros: int

    def __str__(self) -> str:
        sign = "-" if self.micros < 0 else ""
        whole, frac = divmod(abs(self.micros), MICROS_PER_UNIT)
        return f"{sign}{whole}.{frac:06d} {self.currency}"


@cache
def currency_exponents() -> dict[str, int]:
    """ISO 4217 code -> minor-unit exponent (USD 2, JPY 0), from the shipped currencies.csv."""
    table = resources.files("keyleash_core").joinpath("currencies.csv").read_text("utf-8")
    rows = (line.split(",") for line in table.splitlines() if line and not line.startswith("#"))
    return {code: int(exponent) for code, exponent in rows if code != "code"}


def is_currency_code(code: str) -> bool:
    """Whether `code` is one of the ISO 4217 alphabetic codes Keyleash accepts."""
    return code in currency_exponents()


def minor_unit_exponent(code: str) -> int:
    """Digits after the decimal point of `code` (KeyError for a code that is not accepted)."""
    return currency_exponents()[code]
