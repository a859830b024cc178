"""Both servers answer health, reflection and UNIMPLEMENTED-with-details over real channels."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from keyleash_core.postgres import migration_files
from tests.typed_stubs import health_stub, reflection_stub


async def _services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_stub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for response in stub.ServerReflectionInfo(iter([request])):
        return {s.name for s in response.list_services_response.service}
    return set()


async def test_health_and_reflection(
    vault_channel: grpc.aio.Channel, metering_channel: grpc.aio.Channel
) -> None:
    for channel, service in (
        (vault_channel, "keyleash.vault.v1.VaultService"),
        (metering_channel, "keyleash.metering.v1.MeteringService"),
    ):
        health = health_stub(channel)
        for name in ("", service):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert {service, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= (
            await _services(channel)
        )


async def test_migrations_are_recorded_once(system) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    con = await asyncpg.connect(system.stores.database_url)
    try:
        rows = await con.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    finally:
        await con.close()
    assert [(r["version"], r["name"]) for r in rows] == [(v, n) for v, n, _ in migration_files()]


async def test_migrations_are_idempotent_under_concurrent_start(system) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from keyleash_core.postgres import apply_migrations, create_pool

    pools = [await create_pool(system.stores.database_url, timeout_seconds=5) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(p) for p in pools))
    finally:
        for p in pools:
            await p.close()
    assert results == [[], [], []]


async def test_reuse_port_lets_two_processes_share_a_port(stores) -> None:  # type: ignore[no-untyped-def]
    import socket

    import pytest

    from tests.conftest import service_env
    from vault_service.server import create_server
    from vault_service.settings import VaultSettings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    plain = VaultSettings.from_env(service_env(stores) | {"KEYLEASH_AUDIT_DRAIN": "off"})
    first = await create_server(plain, address)
    try:
        with pytest.raises(OSError):
            await create_server(plain, address)
    finally:
        await first.stop(1)
    shared = VaultSettings.from_env(
        service_env(stores) | {"KEYLEASH_REUSE_PORT": "on", "KEYLEASH_AUDIT_DRAIN": "off"}
    )
    first = await create_server(shared, address)
    second = await create_server(shared, address)
    try:
        assert first.port == second.port == port
    finally:
        await first.stop(1)
        await second.stop(1)
