"""SetExchangeRate and ListExchangeRates: the admin's view of the FX table (keyleash_core.fx).

Rates are global to the deployment (one table for every tenant): an exchange rate is a fact
about two currencies, not a tenant's setting, and one table keeps every billing event's
`fx_table_version` meaning the same thing.
"""

from __future__ import annotations

from keyleash_core.auth import ADMIN, SERVICE, Credential
from keyleash_core.errors import PermissionDenied
from keyleash_core.fx import FxTable
from keyleash_core.fx.store import FxRates


class ExchangeRates:
    def __init__(self, rates: FxRates) -> None:
        self._rates = rates

    async def set_rate(self, credential: Credential, base: str, quote: str, ppb: int) -> FxTable:
        """Puts base/quote = ppb in force; returns the table with it."""
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin credential may set exchange rates")
        return await self._rates.set(base, quote, ppb, credential.actor)

    async def table(self, credential: Credential) -> FxTable:
        if credential.kind not in (ADMIN, SERVICE):
            raise PermissionDenied("only an admin or service credential may list exchange rates")
        return await self._rates.table()
