"""Money: integer micros plus an ISO-4217 code. Never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass

MICROS_PER_UNIT = 1_000_000
# Amounts are bounded well inside int64 so sums of many events cannot overflow either.
MAX_ABS_MICROS = 10**15
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, order=True)
class Money:
    """An amount of `currency` in micro-units."""

    currency: str
    micros: int

    def __str__(self) -> str:
        sign = "-" if self.micros < 0 else ""
        whole, frac = divmod(abs(self.micros), MICROS_PER_UNIT)
        return f"{sign}{whole}.{frac:06d} {self.currency}"


def is_currency_code(code: str) -> bool:
    return bool(_CURRENCY.match(code))
