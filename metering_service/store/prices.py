"""Tenants' own model prices (tenant_model_prices), read through a short-lived cache."""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg

from keyleash_core.postgres import run_db
from metering_service.pricing import ModelPrice

# A changed price reaches every metering replica within this many seconds.
CACHE_SECONDS = 5.0

_GET = """SELECT input_per_million_micros, output_per_million_micros,
    cached_input_per_million_micros, update_time FROM tenant_model_prices
    WHERE tenant_id = $1 AND model = $2"""
_UPSERT = """INSERT INTO tenant_model_prices (tenant_id, model, input_per_million_micros,
        output_per_million_micros, cached_input_per_million_micros)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (tenant_id, model) DO UPDATE SET
        input_per_million_micros = EXCLUDED.input_per_million_micros,
        output_per_million_micros = EXCLUDED.output_per_million_micros,
        cached_input_per_million_micros = EXCLUDED.cached_input_per_million_micros,
        update_time = now()"""
_DELETE = "DELETE FROM tenant_model_prices WHERE tenant_id = $1 AND model = $2"


class TenantPrices:
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = pool
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, ModelPrice | None]] = {}

    async def get(self, tenant_id: str, model: str) -> ModelPrice | None:
        """The tenant's own price for the model, or None when it uses the shipped table."""
        cached = self._cache.get((tenant_id, model))
        if cached is not None and self._clock() - cached[0] < CACHE_SECONDS:
            return cached[1]
        row = await run_db(lambda: self._pool.fetchrow(_GET, tenant_id, model))
        price = None
        if row is not None:
            price = ModelPrice(
                model=model,
                input_per_million_micros=row["input_per_million_micros"],
                output_per_million_micros=row["output_per_million_micros"],
                cached_input_per_million_micros=row["cached_input_per_million_micros"],
                effective=row["update_time"].isoformat(),
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(tenant_id, model)] = (self._clock(), price)
        return price

    async def set(self, tenant_id: str, price: ModelPrice | None, model: str) -> None:
        """Stores (or, with None, removes) the tenant's price; this process sees it at once."""
        if price is None:
            await run_db(lambda: self._pool.execute(_DELETE, tenant_id, model))
        else:
            await run_db(
                lambda: self._pool.execute(
                    _UPSERT,
                    tenant_id,
                    model,
                    price.input_per_million_micros,
                    price.output_per_million_micros,
                    price.cached_input_per_million_micros,
                )
            )
        self._cache.pop((tenant_id, model), None)
