"""The FX table in force: shipped rates overlaid with the admin's (fx_rates in Postgres).

Read from Postgres each time a conversion is needed (only calls in another currency than a cap
pay for it), so every vault and metering replica converts at the rate in force, with no cache
to go stale.
"""

from __future__ import annotations

import asyncpg

from keyleash_core.fx import FxTable, Rate, with_overrides
from keyleash_core.postgres import run_db

_CURRENT = """SELECT DISTINCT ON (base_currency, quote_currency)
        base_currency, quote_currency, rate_ppb, revision
    FROM fx_rates ORDER BY base_currency, quote_currency, revision DESC"""
_INSERT = """INSERT INTO fx_rates (base_currency, quote_currency, rate_ppb, set_by)
    VALUES ($1, $2, $3, $4)"""


class FxRates:
    """Reads and sets the FX table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def table(self) -> FxTable:
        rows = await run_db(lambda: self._pool.fetch(_CURRENT))
        overrides = [
            Rate(r["base_currency"], r["quote_currency"], int(r["rate_ppb"]), "admin") for r in rows
        ]
        revision = max((int(r["revision"]) for r in rows), default=0)
        return with_overrides(overrides, revision)

    async def set(self, base: str, quote: str, ppb: int, set_by: str) -> FxTable:
        """Puts a rate in force from now on; returns the table with it."""
        await run_db(lambda: self._pool.execute(_INSERT, base, quote, ppb, set_by))
        return await self.table()
