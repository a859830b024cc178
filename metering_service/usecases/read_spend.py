"""GetSpend, ListBillingEvents and ExportBillingEvents, each narrowed to what the caller may
see: admins and services any tenant, a key holder only its own key's subtree."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

from keyleash_core.auth import ADMIN, SERVICE, Credential
from keyleash_core.errors import InvalidArgument, PermissionDenied
from keyleash_core.money import Money
from keyleash_core.validation import key_name
from metering_service.domain.events import BillingEvent
from metering_service.store import billing
from metering_service.store.billing import EventFilter
from metering_service.usecases.key_access import KeyAccess


class SpendReader:
    def __init__(self, pool: asyncpg.Pool, access: KeyAccess) -> None:
        self.pool = pool
        self._access = access
        self.keys = access.keys

    async def spend_filter(
        self, credential: Credential, subject: str, value: str, f: EventFilter, tenant: str = ""
    ) -> EventFilter:
        """The filter GetSpend sums: the subject, narrowed to what the caller may see.

        `tenant` is GetSpend's subject_tenant_id: agent and run ids are only unique within a
        tenant, so those subjects are always read within one tenant, never summed across."""
        scoped = subject in ("agent_id", "agent_run_id")
        if tenant and not scoped:
            raise InvalidArgument("subject_tenant_id", "only with agent_id or agent_run_id")
        if subject == "key_name":
            tenant_id, key_id = key_name(value, "key_name")
            f = EventFilter(tenant_id=tenant_id, subtree_of=key_id, start_us=f.start_us,
                            end_us=f.end_us)  # fmt: skip
        elif subject == "tenant_id":
            f = EventFilter(tenant_id=value, start_us=f.start_us, end_us=f.end_us)
        elif subject == "agent_id":
            f = EventFilter(tenant_id=tenant, agent_id=value, start_us=f.start_us, end_us=f.end_us)
        else:
            f = EventFilter(
                tenant_id=tenant, agent_run_id=value, start_us=f.start_us, end_us=f.end_us
            )
        if credential.kind in (ADMIN, SERVICE):
            if scoped and not tenant:
                raise InvalidArgument("subject_tenant_id", f"required with {subject}")
            return f
        return await self._key_holders_filter(credential, subject, value, f)

    async def _key_holders_filter(
        self, credential: Credential, subject: str, value: str, f: EventFilter
    ) -> EventFilter:
        caller = (await self._access.caller_key(credential)).key
        if subject == "tenant_id":
            raise PermissionDenied("a key holder may read only its own key's subtree")
        if subject == "key_name":
            target = await self.keys.chain(f.subtree_of)
            if target.key.tenant_id != f.tenant_id or caller.key_id not in target.key.key_path:
                raise PermissionDenied(f"{caller.name} may not read the spend of {value}")
            return f
        if f.tenant_id and f.tenant_id != caller.tenant_id:
            raise PermissionDenied(f"{caller.name} may read only its own tenant's spend")
        return EventFilter(
            tenant_id=caller.tenant_id,
            subtree_of=caller.key_id,
            agent_id=f.agent_id,
            agent_run_id=f.agent_run_id,
            start_us=f.start_us,
            end_us=f.end_us,
        )

    async def spend(
        self,
        credential: Credential,
        subject: str,
        value: str,
        window: EventFilter,
        tenant: str = "",
    ) -> tuple[list[Money], int]:
        f = await self.spend_filter(credential, subject, value, window, tenant)
        return await billing.spend_totals(self.pool, f)

    @staticmethod
    def check_reader(credential: Credential, f: EventFilter) -> None:
        """Listing and export: admin, or a service naming a tenant."""
        if credential.kind == ADMIN:
            return
        if credential.kind != SERVICE:
            raise PermissionDenied("only admin and service credentials may list billing events")
        if not f.tenant_id:
            raise InvalidArgument("filter.tenant_id", "required for service credentials")

    async def list_events(
        self,
        credential: Credential,
        f: EventFilter,
        after: tuple[int, str] | None,
        limit: int,
        newest_first: bool = False,
    ) -> list[BillingEvent]:
        self.check_reader(credential, f)
        return await billing.list_events(self.pool, f, after, limit, newest_first)

    def export_events(self, credential: Credential, f: EventFilter) -> AsyncIterator[BillingEvent]:
        self.check_reader(credential, f)
        return billing.export_events(self.pool, f)
