"""SetTenantBudget and GetTenant: a tenant's daily threshold, its spend today and the throttle
that crossing the threshold sets (admin only)."""

from __future__ import annotations

from keyleash_core.auth import ADMIN, Credential
from keyleash_core.clock import Clock
from keyleash_core.errors import PermissionDenied
from keyleash_core.money import Money
from metering_service.store.tenants import TenantBudgets, TenantView


class TenantBudgetAdmin:
    def __init__(self, tenants: TenantBudgets, clock: Clock) -> None:
        self.tenants = tenants
        self.clock = clock

    @staticmethod
    def _admin_only(credential: Credential) -> None:
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin credential may read or change tenant budgets")

    async def set_budget(
        self, credential: Credential, tenant_id: str, threshold: Money | None, lift: bool
    ) -> TenantView:
        self._admin_only(credential)
        now = self.clock.now_ms()
        await self.tenants.set_budget(tenant_id, threshold, lift, now)
        return await self.tenants.from_postgres(tenant_id, now)

    async def get_tenant(self, credential: Credential, tenant_id: str) -> TenantView:
        self._admin_only(credential)
        return await self.tenants.from_postgres(tenant_id, self.clock.now_ms())
