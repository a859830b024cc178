"""The price a tenant pays for an LLM model: its own (SetTenantModelPrice), else the shipped
versioned table's."""

from __future__ import annotations

from keyleash_core.auth import ADMIN, SERVICE, Credential
from keyleash_core.errors import PermissionDenied
from metering_service.domain.pricing import price_for
from metering_service.pricing import ModelPrice, PriceTable
from metering_service.store.prices import TenantPrices


class ModelPrices:
    def __init__(self, prices: PriceTable, tenant_prices: TenantPrices) -> None:
        self.prices = prices
        self.tenant_prices = tenant_prices

    async def price_of(self, tenant_id: str, model: str) -> tuple[ModelPrice, str]:
        """The price a tenant pays for a model (its own, else the shipped table's) and its
        source, or FAILED_PRECONDITION naming an unknown model."""
        own = await self.tenant_prices.get(tenant_id, model)
        if own is not None:
            return own, f"tenant:{tenant_id}"
        return price_for(self.prices, model), self.prices.cost_source

    async def tenant_price(
        self, credential: Credential, tenant_id: str, model: str
    ) -> tuple[ModelPrice, str]:
        """GetTenantModelPrice: price_of for an admin or service caller (the gateway)."""
        if credential.kind not in (ADMIN, SERVICE):
            raise PermissionDenied("only an admin or service credential may read prices")
        return await self.price_of(tenant_id, model)

    async def set_tenant_price(
        self, credential: Credential, tenant_id: str, price: ModelPrice | None, model: str
    ) -> tuple[ModelPrice, str]:
        """Sets or (None) clears a tenant's own price; returns the price now in force."""
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin credential may set prices")
        await self.tenant_prices.set(tenant_id, price, model)
        return await self.price_of(tenant_id, model)
