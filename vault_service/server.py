"""Composition root of the Vault service: stores, domain, servicer, interceptors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc

from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_core.clock import Clock, SystemClock
from keyleash_core.grpc_server import BuiltServer, start_grpc_server
from keyleash_core.redis_store import close_redis, create_redis
from keyleash_core.stores import connect_stores
from keyleash_core.telemetry import server_interceptors, setup_metrics
from vault_service.audit.drainer import AuditDrainer
from vault_service.authority import VaultAuthority
from vault_service.connections import ConnectionAdmin
from vault_service.key_admin import KeyAdmin
from vault_service.servicer import VaultServicer
from vault_service.settings import VaultSettings
from vault_service.store.connections import ConnectionStore
from vault_service.store.hot import HotKeys
from vault_service.store.registry import KeyRegistry

ERROR_DOMAIN = "vault.keyleash"
SERVICE_NAME = vault_pb2.DESCRIPTOR.services_by_name["VaultService"].full_name


async def create_server(
    settings: VaultSettings, address: str | None = None, *, clock: Clock | None = None
) -> BuiltServer:
    """Connects the stores and starts the server on `address` (port 0 picks a free port)."""
    setup_metrics(settings.stores.metrics_port)
    stores = await connect_stores(settings.stores)
    authority = VaultAuthority(
        pool=stores.pool,
        hot=HotKeys(stores.redis, stores.scripts),
        scripts=stores.scripts,
        registry=KeyRegistry(stores.pool),
        pepper=settings.stores.key_pepper,
        clock=clock or SystemClock(),
        audit_max=settings.audit_max_stream_length if settings.audit_enabled else 0,
    )
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

    async def close() -> None:
        await drainer.stop()
        await close_redis(drainer_redis)
        await stores.aclose()

    admin = KeyAdmin(
        authority,
        max_depth=settings.max_key_depth,
        default_ttl_ms=settings.default_ttl_seconds * 1000,
        max_ttl_ms=settings.max_ttl_seconds * 1000,
    )
    connections = ConnectionAdmin(
        ConnectionStore(stores.pool), authority, settings.secrets_key, authority.clock
    )
    servicer = VaultServicer(authority, admin, settings.stores, connections=connections)

    def register(server: grpc.aio.Server) -> Iterable[str]:
        vault_pb2_grpc.add_VaultServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
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


async def start_from_env(env: Mapping[str, str]) -> BuiltServer:
    return await create_server(VaultSettings.from_env(env))
