"""Composition root of the Vault service: stores, domain, servicer, interceptors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc

from keyleash_core.clock import Clock, SystemClock
from keyleash_core.grpc_server import BuiltServer, start_grpc_server
from keyleash_core.stores import connect_stores
from vault_service.authority import VaultAuthority
from vault_service.key_admin import KeyAdmin
from vault_service.servicer import VaultServicer
from vault_service.settings import VaultSettings
from vault_service.store.hot import HotKeys
from vault_service.store.registry import KeyRegistry

ERROR_DOMAIN = "vault.keyleash"
SERVICE_NAME = vault_pb2.DESCRIPTOR.services_by_name["VaultService"].full_name


async def create_server(
    settings: VaultSettings, address: str | None = None, *, clock: Clock | None = None
) -> BuiltServer:
    """Connects the stores and starts the server on `address` (port 0 picks a free port)."""
    stores = await connect_stores(settings.stores)
    authority = VaultAuthority(
        pool=stores.pool,
        hot=HotKeys(stores.redis, stores.scripts),
        scripts=stores.scripts,
        registry=KeyRegistry(stores.pool),
        pepper=settings.stores.key_pepper,
        clock=clock or SystemClock(),
    )
    admin = KeyAdmin(
        authority,
        max_depth=settings.max_key_depth,
        default_ttl_ms=settings.default_ttl_seconds * 1000,
        max_ttl_ms=settings.max_ttl_seconds * 1000,
    )
    servicer = VaultServicer(authority, admin, settings.stores)

    def register(server: grpc.aio.Server) -> Iterable[str]:
        vault_pb2_grpc.add_VaultServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
        return [SERVICE_NAME]

    try:
        return await start_grpc_server(
            address or settings.listen, register, domain=ERROR_DOMAIN, on_close=stores.aclose
        )
    except BaseException:
        await stores.aclose()
        raise


async def start_from_env(env: Mapping[str, str]) -> BuiltServer:
    return await create_server(VaultSettings.from_env(env))
