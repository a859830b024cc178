"""What the console's pages ask of Keyleash, over the project's gRPC clients. Every call carries
the signed-in operator's token (the console has no credential of its own), so Vault and Metering
decide what the operator may see and do, and their audit names the operator's credential."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from keyleash.client import (
    ConnectionsClient,
    KeyleashError,
    MeteringClient,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    VaultClient,
)
from keyleash.metering.v1 import metering_pb2 as P
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_console import views
from keyleash_console.settings import ConsoleSettings

T = TypeVar("T")
AUDIT_PAGE_SIZE = 50
LEDGER_LIMIT = 10_000  # records of each kind one run's ledger shows
SUBTREE_LIMIT = 500
CHART_DAYS = 14
ACTIONS = ("freeze", "unfreeze", "revoke")


@dataclass(frozen=True)
class KeyView:
    row: views.TreeRow
    bars: list[views.UsageBar]


@dataclass(frozen=True)
class KeysPage:
    keys: list[KeyView]
    next_page_token: str


@dataclass(frozen=True)
class KeyDetail:
    key: V.Key
    bars: list[views.UsageBar]
    subtree: list[views.TreeRow]
    history: list[V.KeyEvent]


@dataclass(frozen=True)
class SpendReport:
    today: list[str]
    month: list[str]
    currency: str
    chart: list[views.ChartBar] = field(default_factory=list)


def stamp(moment: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(moment)
    return result


class Console:
    def __init__(self, settings: ConsoleSettings) -> None:
        timeout = settings.keyleash_timeout_seconds
        # token="": no ambient KEYLEASH_TOKEN; each call names the operator's.
        self.vault = VaultClient(settings.vault_target, token="", timeout=timeout)
        self.metering = MeteringClient(settings.metering_target, token="", timeout=timeout)
        self.connections = ConnectionsClient(settings.vault_target, token="", timeout=timeout)
        self.page_size = settings.keys_page_size

    async def close(self) -> None:
        await self.vault.close()
        await self.metering.close()
        await self.connections.close()

    async def is_admin(self, token: str) -> bool:
        """Whether `token` is an admin credential: GetTenant answers only admins."""
        if not token or token.startswith("vk_"):
            return False
        try:
            await self.metering.get_tenant("console-sign-in-check", token=token)
        except NotFound:
            return True
        except (Unauthenticated, PermissionDenied):
            return False
        return True

    async def keys_page(
        self,
        token: str,
        tenant_id: str,
        state: V.Key.State,
        label_prefix: str,
        agent_id: str,
        page_token: str,
    ) -> KeysPage:
        page = await self.vault.list_keys(
            tenant_id=tenant_id,
            state=state,
            label_prefix=label_prefix,
            page_size=self.page_size,
            page_token=page_token,
            token=token,
        )
        keys = [k for k in page.keys if not agent_id or k.agent_id == agent_id]
        rows = views.key_tree(keys)
        usages = await asyncio.gather(*(self._own_usage(token, r.key) for r in rows))
        return KeysPage(
            [KeyView(r, u) for r, u in zip(rows, usages, strict=True)], page.next_page_token
        )

    async def keys_of_run(self, token: str, tenant_id: str, run_id: str) -> KeysPage:
        """The keys an agent run used (from its decisions), as a tree, one page."""
        seen: dict[str, None] = {}
        decisions = self.vault.iter_authorizations(
            tenant_id=tenant_id, agent_run_id=run_id, page_size=1000, token=token
        )
        async for decision in _bounded(decisions):
            seen.setdefault(decision.key_id)
            if len(seen) >= self.page_size:
                break
        keys = await asyncio.gather(
            *(self.vault.get_key(f"tenants/{tenant_id}/keys/{k}", token=token) for k in seen)
        )
        rows = views.key_tree(keys)
        usages = await asyncio.gather(*(self._own_usage(token, r.key) for r in rows))
        return KeysPage([KeyView(r, u) for r, u in zip(rows, usages, strict=True)], "")

    async def _own_usage(self, token: str, key: V.Key) -> list[views.UsageBar]:
        if key.state not in (V.Key.STATE_ACTIVE, V.Key.STATE_FROZEN):
            return []  # nothing live to show, and no call spent on it
        name = key.name
        try:
            usage = await self.vault.get_key_usage(name, token=token)
        except KeyleashError:
            return []  # a revoked or expired key has no live usage to show
        own = [u for u in usage.keys if u.name == name]
        return views.usage_bars(own[0].quotas) if own else []

    async def key_detail(self, token: str, name: str) -> KeyDetail:
        key = await self.vault.get_key(name, token=token)
        bars: list[views.UsageBar] = []
        try:
            usage = await self.vault.get_key_usage(name, token=token)
            bars = views.usage_bars(q for u in usage.keys for q in u.quotas)
        except KeyleashError:
            pass
        subtree = await self.subtree(token, key)
        history = [e async for e in self.vault.iter_key_events(name, token=token)]
        return KeyDetail(key, bars, subtree, history[::-1])

    async def subtree(self, token: str, key: V.Key) -> list[views.TreeRow]:
        """The key and its descendants (up to SUBTREE_LIMIT), as a tree."""
        found = [key]
        frontier = [key.key_id]
        while frontier and len(found) < SUBTREE_LIMIT:
            parent = frontier.pop(0)
            async for child in self.vault.iter_keys(
                tenant_id=key.tenant_id, parent_key_id=parent, page_size=1000, token=token
            ):
                found.append(child)
                frontier.append(child.key_id)
        return views.key_tree(found[:SUBTREE_LIMIT])

    async def find_by_secret(self, token: str, secret: str) -> str | None:
        """The name of the key a pasted secret belongs to; the secret goes nowhere else."""
        answer = await self.vault.validate_key(V.ValidateKeyRequest(key=secret), token=token)
        return answer.key.name or None

    async def act(self, token: str, name: str, action: str, reason: str) -> V.Key:
        if action == "freeze":
            return await self.vault.freeze_key(name=name, reason=reason, token=token)
        if action == "unfreeze":
            return await self.vault.unfreeze_key(name, token=token)
        if action == "revoke":
            return (await self.vault.revoke_key(name=name, reason=reason, token=token)).key
        raise ValueError(f"unknown action {action!r}")

    async def audit_page(
        self, token: str, request: V.ListAuthorizationsRequest
    ) -> V.ListAuthorizationsResponse:
        request.order_by = "decision_time desc"
        request.page_size = AUDIT_PAGE_SIZE
        return await self.vault.list_authorizations(request, token=token)

    async def run_ledger(self, token: str, tenant_id: str, run_id: str) -> list[views.LedgerRow]:
        decisions = self.vault.iter_authorizations(
            tenant_id=tenant_id, agent_run_id=run_id, page_size=1000, token=token
        )
        events = self.metering.iter_billing_events(
            P.ListBillingEventsRequest(
                filter=P.BillingEventFilter(tenant_id=tenant_id, agent_run_id=run_id),
                page_size=1000,
            ),
            token=token,
        )
        return views.ledger_rows(
            [d async for d in _bounded(decisions)], [e async for e in _bounded(events)]
        )

    async def spend(
        self, token: str, tenant_id: str, subject: str, value: str, now: datetime
    ) -> SpendReport:
        def request(start: datetime, end: datetime | None = None) -> P.GetSpendRequest:
            built = _spend_subject(tenant_id, subject, value)
            built.start_time.CopyFrom(stamp(start))
            if end is not None:
                built.end_time.CopyFrom(stamp(end))
            return built

        async def totals(start: datetime, end: datetime | None = None) -> P.GetSpendResponse:
            return await self.metering.get_spend(request(start, end), token=token)

        today_start = views.day_start(now)
        days = [today_start - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
        today, month, *daily = await asyncio.gather(
            totals(today_start),
            totals(views.month_start(now)),
            *(totals(day, day + timedelta(days=1)) for day in days),
        )
        currency = _main_currency(month) or _main_currency(today) or "USD"
        points = [
            (day.strftime("%m-%d"), _micros_in(spent, currency))
            for day, spent in zip(days, daily, strict=True)
        ]
        return SpendReport(
            [views.money_of(m) for m in today.totals],
            [views.money_of(m) for m in month.totals],
            currency,
            views.chart_bars(points, currency),
        )

    async def list_connections(self, token: str, tenant_id: str) -> list[V.Connection]:
        return [c async for c in self.connections.iter_connections(tenant_id, token=token)]

    async def add_connection(
        self,
        token: str,
        tenant_id: str,
        vendor: str,
        connection_id: str,
        base_url: str,
        secret: str,
    ) -> V.Connection:
        return await self.connections.create_connection(
            V.CreateConnectionRequest(
                tenant_id=tenant_id,
                connection=V.Connection(
                    vendor=vendor, connection_id=connection_id, base_url=base_url
                ),
                secret=secret,
                request_id=str(uuid.uuid4()),
            ),
            token=token,
        )

    async def rotate_connection(self, token: str, name: str, secret: str) -> V.Connection:
        return await self.connections.rotate_connection_secret(name, secret, token=token)


def _spend_subject(tenant_id: str, subject: str, value: str) -> P.GetSpendRequest:
    if subject == "key":
        return P.GetSpendRequest(key_name=f"tenants/{tenant_id}/keys/{value}")
    if subject == "agent":
        return P.GetSpendRequest(agent_id=value, subject_tenant_id=tenant_id)
    if subject == "run":
        return P.GetSpendRequest(agent_run_id=value, subject_tenant_id=tenant_id)
    return P.GetSpendRequest(tenant_id=tenant_id)


def _main_currency(spent: P.GetSpendResponse) -> str:
    ranked = sorted(spent.totals, key=lambda m: -abs(m.micros))
    return ranked[0].currency_code if ranked else ""


def _micros_in(spent: P.GetSpendResponse, currency: str) -> int:
    return sum(m.micros for m in spent.totals if m.currency_code == currency)


async def _bounded(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """At most LEDGER_LIMIT items: one run's page stays bounded whatever the run did."""
    count = 0
    async for item in items:
        yield item
        count += 1
        if count >= LEDGER_LIMIT:
            return
