"""Composition root of the Vault service: stores, domain, servicer, interceptors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc

from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_core.clock import Clock, SystemClock
from keyleash_core.grpc_server import BuiltServer, start_grpc_server
from keyleash_core.redis.scripts import close_redis, create_redis
from keyleash_core.stores import Stores, connect_stores
from keyleash_core.telemetry import server_interceptors, setup_metrics
from vault_service.approval_sweeper import ApprovalSweeper
from vault_service.audit.drainer import AuditDrainer
from vault_service.servicer import VaultServicer
from vault_service.settings import VaultSettings
from vault_service.store.approvals import ApprovalStore
from vault_service.store.connection_versions import ConnectionVersions
from vault_service.store.connections import ConnectionStore
from vault_service.store.hot import HotKeys
from vault_service.store.registry import KeyRegistry
from vault_service.store.templates import TemplateStore
from vault_service.usecases.approvals import ApprovalDesk
from vault_service.usecases.authorize import Authorizer
from vault_service.usecases.decide_approval import ApprovalDecider
from vault_service.usecases.key_chains import KeyChains
from vault_service.usecases.key_history import KeyHistory
from vault_service.usecases.key_usage import KeyUsageReader
from vault_service.usecases.list_decisions import DecisionLog
from vault_service.usecases.manage_connections import ConnectionAdmin
from vault_service.usecases.manage_keys import KeyAdmin
from vault_service.usecases.permissions import Permissions
from vault_service.usecases.templates import TemplateAdmin

ERROR_DOMAIN = "vault.keyleash"
SERVICE_NAME = vault_pb2.DESCRIPTOR.services_by_name["VaultService"].full_name


async def create_server(
    settings: VaultSettings, address: str | None = None, *, clock: Clock | None = None
) -> BuiltServer:
    """Connects the stores and starts the server on `address` (port 0 picks a free port)."""
    setup_metrics(settings.stores.metrics_port)
    stores = await connect_stores(settings.stores)
    servicer = build_servicer(settings, stores, clock or SystemClock())
    # Its own Redis connections, so its blocking reads never queue behind (or delay) decisions.
    drainer_redis = create_redis(
        settings.stores.redis_url,
        timeout_seconds=settings.stores.store_timeout_seconds,
        max_connections=4,
        client_name="keyleash-audit-drainer",
        cluster=settings.stores.redis_cluster,
    )
    drainer = AuditDrainer(
        drainer_redis,
        stores.pool,
        retention_days=settings.audit_retention_days,
        batch_size=settings.audit_batch_size,
    )
    if settings.audit_enabled and settings.audit_drain:
        drainer.start()
    sweeper = ApprovalSweeper(servicer.approval_desk, settings.approval_sweep_seconds)
    sweeper.start()

    async def close() -> None:
        await sweeper.stop()
        await drainer.stop()
        await close_redis(drainer_redis)
        await stores.aclose()

    def register(server: grpc.aio.Server) -> Iterable[str]:
        vault_pb2_grpc.add_VaultServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    try:
        return await start_grpc_server(
            address or settings.listen,
            register,
            domain=ERROR_DOMAIN,
            interceptors=server_interceptors(),
            on_close=close,
            tls=settings.stores.tls,
            reuse_port=settings.stores.reuse_port,
        )
    except BaseException:
        await close()
        raise


def build_servicer(settings: VaultSettings, stores: Stores, clock: Clock) -> VaultServicer:
    """The use cases over the stores, and the servicer over them."""
    hot = HotKeys(stores.redis, stores.scripts)
    chains = KeyChains(
        pool=stores.pool,
        hot=hot,
        registry=KeyRegistry(stores.pool),
        pepper=settings.stores.key_pepper,
        clock=clock,
        audit_max_lag_ms=settings.audit_max_lag_ms if settings.audit_enabled else None,
    )
    permissions = Permissions(chains)
    approvals = ApprovalDesk(ApprovalStore(stores.pool), permissions, clock)
    authorizer = Authorizer(
        chains=chains,
        pool=stores.pool,
        hot=hot,
        scripts=stores.scripts,
        clock=clock,
        audit_max=settings.audit_max_stream_length if settings.audit_enabled else 0,
        audit_max_lag_ms=settings.audit_max_lag_ms,
        on_budget_denial=approvals.open_for_denial,
    )
    admin = KeyAdmin(
        chains,
        permissions,
        max_depth=settings.max_key_depth,
        default_ttl_ms=settings.default_ttl_seconds * 1000,
        max_ttl_ms=settings.max_ttl_seconds * 1000,
    )
    connections = ConnectionAdmin(
        ConnectionStore(stores.pool),
        chains,
        settings.secrets_key,
        clock,
        ConnectionVersions(stores.redis),
    )
    return VaultServicer(
        authorizer,
        chains,
        admin,
        DecisionLog(stores.pool, permissions),
        settings.stores,
        KeyUsageReader(chains, permissions, stores.pool, stores.scripts),
        KeyHistory(chains.registry, permissions),
        connections=connections,
        templates=TemplateAdmin(TemplateStore(stores.pool), admin, permissions),
        approvals=approvals,
        approval_decider=ApprovalDecider(approvals, stores.scripts, settings.stores.key_pepper),
    )


async def start_from_env(env: Mapping[str, str]) -> BuiltServer:
    return await create_server(VaultSettings.from_env(env))
