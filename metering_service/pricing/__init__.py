"""The versioned LLM price table shipped with Keyleash (prices.json) and its loader.

Prices are integer micros (USD) per million tokens, so pricing never touches a float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

CURRENCY = "USD"


@dataclass(frozen=True)
class ModelPrice:
    """What one model costs, in micros of USD per million tokens of each kind."""

    model: str
    input_per_million_micros: int
    output_per_million_micros: int
    cached_input_per_million_micros: int
    effective: str


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


def _price(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where} must be a non-negative integer of micros")
    return value


def parse_price_table(data: dict[str, Any]) -> PriceTable:
    """A PriceTable from its JSON form; ValueError names the first malformed entry."""
    models = {}
    for name, entry in data["models"].items():
        models[name] = ModelPrice(
            model=name,
            input_per_million_micros=_price(entry["input_per_million_micros"], f"{name}.input"),
            output_per_million_micros=_price(entry["output_per_million_micros"], f"{name}.output"),
            cached_input_per_million_micros=_price(
                entry.get("cached_input_per_million_micros", entry["input_per_million_micros"]),
                f"{name}.cached_input",
            ),
            effective=str(entry.get("effective", data["version"])),
        )
    return PriceTable(
        version=str(data["version"]), source=str(data.get("source", "")), models=models
    )


def load_price_table() -> PriceTable:
    """The price table shipped in this package (metering_service/pricing/prices.json)."""
    text = resources.files("metering_service.pricing").joinpath("prices.json").read_text("utf-8")
    return parse_price_table(json.loads(text))
