"""Currency exponents (ISO 4217 minor units) and conversion of vendor minor units to micros."""

from __future__ import annotations

from keyleash_core.money import MICROS_PER_UNIT, Money

# Stripe's zero-decimal currencies: an `amount` of 500 JPY is 500 yen.
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
# Three-decimal currencies: an `amount` of 1000 KWD is 1 dinar.
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def minor_to_money(amount_minor: int, currency: str) -> Money:
    """Money for an amount in the currency's smallest unit (cents, yen, fils)."""
    code = currency.upper()
    return Money(code, amount_minor * (MICROS_PER_UNIT // 10 ** exponent(code)))


def decimal_to_micros(text: str) -> int:
    """Micros of a decimal string such as "0.00750" or "-0.0075" (exact, no float)."""
    sign = -1 if text.strip().startswith("-") else 1
    whole, _, fraction = text.strip().lstrip("+-").partition(".")
    if (
        not (whole or fraction)
        or not (whole or "0").isdigit()
        or (fraction and not fraction.isdigit())
    ):
        raise ValueError(f"not a decimal amount: {text!r}")
    micros = int(whole or "0") * MICROS_PER_UNIT + int((fraction + "000000")[:6])
    return sign * micros
