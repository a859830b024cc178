"""Pricing LLM token usage from the price table, in integer arithmetic only (the formula is
keyleash_core.llm_prices', shared with the gateway; this adds metering's bounds and errors).

cost = ceil((input * p_in + output * p_out + cached * p_cached) / 1_000_000) micros, where each p
is micros per million tokens. Rounding is up, to the next micro, once over the whole call: nobody
is ever undercharged, and the overcharge is below one micro (1e-6 USD) per call.
"""

from __future__ import annotations

from keyleash_core.errors import FailedPrecondition, InvalidArgument
from keyleash_core.llm_prices import TokenCounts, ceil_div, tokens_cost_micros
from keyleash_core.money import MAX_ABS_MICROS
from keyleash_core.reasons import ErrorReason
from metering_service.pricing import ModelPrice, PriceTable

__all__ = ["MAX_TOKENS", "ceil_div", "price_for", "usage_cost_micros"]

# One call cannot plausibly use more; keeps every product far inside int64 for Postgres.
MAX_TOKENS = 10**12


def usage_cost_micros(
    price: ModelPrice, input_tokens: int, output_tokens: int, cached_input_tokens: int
) -> int:
    """What the tokens cost, rounded up to the micro (see the module docstring)."""
    for name, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cached_input_tokens", cached_input_tokens),
    ):
        if value < 0 or value > MAX_TOKENS:
            raise InvalidArgument(name, f"between 0 and {MAX_TOKENS}")
    tokens = TokenCounts(input=input_tokens, output=output_tokens, cached_input=cached_input_tokens)
    cost = tokens_cost_micros(price, tokens)
    if cost > MAX_ABS_MICROS:
        raise InvalidArgument("input_tokens", "the usage costs more than one event may record")
    return cost


def price_for(table: PriceTable, model: str) -> ModelPrice:
    """The model's price, or FAILED_PRECONDITION naming it (never a silent zero cost)."""
    price = table.get(model)
    if price is None:
        raise FailedPrecondition(
            f"model {model!r} is not in price table {table.version}",
            reason=ErrorReason.UNKNOWN_MODEL,
            metadata={"model": model, "price_table": table.version},
        )
    return price
