"""The versioned LLM price table, as metering uses it. The table and its loader live in
keyleash_core.llm_prices, shared with the gateway (one file, one version per release)."""

from __future__ import annotations

from keyleash_core.llm_prices import (
    CURRENCY,
    ModelPrice,
    PriceTable,
    load_price_table,
    parse_price_table,
)

__all__ = ["CURRENCY", "ModelPrice", "PriceTable", "load_price_table", "parse_price_table"]
