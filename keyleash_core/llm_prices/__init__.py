"""The versioned LLM price table shipped with Keyleash (prices.json), its loader, and the one
pricing formula. Metering prices RecordUsage with it; the gateway holds and charges its LLM
routes with it; both read this one file, so a release has one table version.

Prices are integer micros (USD) per million tokens, so pricing never touches a float:
cost = ceil(sum(tokens of each kind x its price) / 1_000_000) micros, rounded up once per call,
so nobody is undercharged and the overcharge is below one micro per call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

CURRENCY = "USD"
TOKENS_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """What one model costs, in micros of USD per million tokens of each kind.

    `cache_write_input_per_million_micros` prices input tokens written to the provider's prompt
    cache (Anthropic's cache_creation_input_tokens); `max_output_tokens` is the model's
    documented output limit, what a request that sets none may produce (0: unknown)."""

    model: str
    input_per_million_micros: int
    output_per_million_micros: int
    cached_input_per_million_micros: int
    effective: str
    cache_write_input_per_million_micros: int = -1  # -1: the input price
    max_output_tokens: int = 0

    @property
    def cache_write_price(self) -> int:
        if self.cache_write_input_per_million_micros < 0:
            return self.input_per_million_micros
        return self.cache_write_input_per_million_micros


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of one LLM call, each kind counted once: `input` excludes cached and cache-write
    tokens; `output` includes reasoning tokens (vendors bill them as output)."""

    input: int = 0
    output: int = 0
    cached_input: int = 0
    cache_write_input: int = 0


@dataclass(frozen=True)
class PriceTable:
    """One version of the price table. `source` says where the prices were copied from."""

    version: str
    source: str
    models: dict[str, ModelPrice]

    @property
    def cost_source(self) -> str:
        """What billing events priced from this table record as their cost_source."""
        return f"prices:{self.version}"

    def get(self, model: str) -> ModelPrice | None:
        return self.models.get(model)


def ceil_div(numerator: int, denominator: int) -> int:
    """Ceiling of numerator / denominator for non-negative integers, without floats."""
    return -(-numerator // denominator)


def tokens_cost_micros(price: ModelPrice, tokens: TokenCounts) -> int:
    """What the tokens cost, in micros, rounded up once (see the module docstring)."""
    scaled = (
        tokens.input * price.input_per_million_micros
        + tokens.output * price.output_per_million_micros
        + tokens.cached_input * price.cached_input_per_million_micros
        + tokens.cache_write_input * price.cache_write_price
    )
    return ceil_div(scaled, TOKENS_PER_MILLION)


def _price(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where} must be a non-negative integer")
    return value


def _model(name: str, entry: dict[str, Any], version: str) -> ModelPrice:
    input_price = _price(entry["input_per_million_micros"], f"{name}.input")
    return ModelPrice(
        model=name,
        input_per_million_micros=input_price,
        output_per_million_micros=_price(entry["output_per_million_micros"], f"{name}.output"),
        cached_input_per_million_micros=_price(
            entry.get("cached_input_per_million_micros", input_price), f"{name}.cached_input"
        ),
        effective=str(entry.get("effective", version)),
        cache_write_input_per_million_micros=_price(
            entry.get("cache_write_input_per_million_micros", input_price), f"{name}.cache_write"
        ),
        max_output_tokens=_price(entry.get("max_output_tokens", 0), f"{name}.max_output_tokens"),
    )


def parse_price_table(data: dict[str, Any]) -> PriceTable:
    """A PriceTable from its JSON form; ValueError names the first malformed entry."""
    version = str(data["version"])
    models = {name: _model(name, entry, version) for name, entry in data["models"].items()}
    return PriceTable(version=version, source=str(data.get("source", "")), models=models)


def load_price_table() -> PriceTable:
    """The price table shipped with Keyleash (keyleash_core/llm_prices/prices.json)."""
    text = resources.files("keyleash_core.llm_prices").joinpath("prices.json").read_text("utf-8")
    return parse_price_table(json.loads(text))
