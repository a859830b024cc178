"""Vendor connections over gRPC: admin management, idempotent create, sealed at rest, and the
gateway's service-only access to the clear secret."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from keyleash.client import (
    AlreadyExists,
    ConnectionsClient,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    VaultClient,
)
from keyleash.vault.v1 import vault_pb2
from tests.gateway.conftest import SealedSystem

SECRET = "sk_test_51Hclear" + "Q" * 24


def _create(
    tenant: str, vendor: str = "stripe", **extra: object
) -> vault_pb2.CreateConnectionRequest:
    connection = vault_pb2.Connection(vendor=vendor, **extra)  # type: ignore[arg-type]
    return vault_pb2.CreateConnectionRequest(tenant_id=tenant, connection=connection, secret=SECRET)


async def _mint(vault: VaultClient, tenant: str, **metadata: str) -> str:
    minted = await vault.mint_key(
        tenant_id=tenant, agent_id="agent", scopes=["stripe.charges.write"], metadata=metadata
    )
    return minted.secret


async def test_create_get_list_rotate_delete(
    admin_connections: ConnectionsClient, tenant: str
) -> None:
    created = await admin_connections.create_connection(
        _create(tenant, connection_id="main", base_url="http://127.0.0.1:9")
    )
    assert created.name == f"tenants/{tenant}/connections/main"
    assert (created.vendor, created.base_url) == ("stripe", "http://127.0.0.1:9")
    assert SECRET not in str(created)
    assert (await admin_connections.get_connection(created.name)) == created
    other = await admin_connections.create_connection(_create(tenant, vendor="resend"))
    assert other.connection_id.startswith("c-")
    listed = [c.name async for c in admin_connections.iter_connections(tenant)]
    assert listed == [created.name, other.name]
    page = await admin_connections.list_connections(tenant_id=tenant, page_size=1)
    assert [c.name for c in page.connections] == [created.name] and page.next_page_token
    rotated = await admin_connections.rotate_connection_secret(created.name, "sk_test_new")
    assert rotated.HasField("rotate_time") and not created.HasField("rotate_time")
    deleted = await admin_connections.delete_connection(created.name)
    assert deleted.connection.name == created.name
    with pytest.raises(NotFound) as missing:
        await admin_connections.get_connection(created.name)
    assert missing.value.reason == "CONNECTION_NOT_FOUND"
    with pytest.raises(AlreadyExists) as reused:
        await admin_connections.create_connection(_create(tenant, connection_id="main"))
    assert reused.value.reason == "CONNECTION_EXISTS"


async def test_create_is_idempotent_by_request_id(
    admin_connections: ConnectionsClient, tenant: str
) -> None:
    request = _create(tenant, connection_id="idem")
    request.request_id = "req-1"
    first = await admin_connections.create_connection(request)
    assert await admin_connections.create_connection(request) == first
    request.secret = "sk_test_different"
    with pytest.raises(AlreadyExists) as error:
        await admin_connections.create_connection(request)
    assert error.value.reason == "REQUEST_ID_REUSED"


@pytest.mark.parametrize(
    ("field", "request_fields"),
    [
        ("connection.vendor", {"connection": vault_pb2.Connection(vendor="Stripe!")}),
        ("connection.vendor", {"connection": vault_pb2.Connection()}),
        ("secret", {"connection": vault_pb2.Connection(vendor="stripe"), "secret": ""}),
        ("secret", {"connection": vault_pb2.Connection(vendor="stripe"), "secret": "a\nb"}),
        (
            "connection.base_url",
            {"connection": vault_pb2.Connection(vendor="stripe", base_url="ftp://x")},
        ),
        (
            "connection.connection_id",
            {"connection": vault_pb2.Connection(vendor="stripe", connection_id="Has Space")},
        ),
    ],
)
async def test_bad_requests_name_the_field(
    admin_connections: ConnectionsClient, tenant: str, field: str, request_fields: dict[str, Any]
) -> None:
    request = vault_pb2.CreateConnectionRequest(
        tenant_id=tenant, **({"secret": "s"} | request_fields)
    )
    with pytest.raises(InvalidArgument) as error:
        await admin_connections.create_connection(request)
    assert error.value.field_violations[0].field == field
    assert SECRET not in str(error.value)


async def test_only_admins_manage_and_only_the_service_reads_secrets(
    admin_connections: ConnectionsClient,
    service_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    created = await admin_connections.create_connection(_create(tenant))
    with pytest.raises(PermissionDenied):
        await service_connections.get_connection(created.name)
    key = await _mint(admin_vault, tenant)
    with pytest.raises(PermissionDenied):
        await admin_connections.access_connection_secret(key, "stripe")
    with pytest.raises(PermissionDenied):
        await admin_connections.get_connection(created.name, token=key)
    access = await service_connections.access_connection_secret(key, "stripe")
    assert access.secret == SECRET and access.connection.name == created.name
    assert access.key_id
    with pytest.raises(NotFound) as none:
        await service_connections.access_connection_secret(key, "twilio")
    assert none.value.reason == "CONNECTION_NOT_FOUND"


async def test_a_key_uses_the_oldest_connection_unless_its_metadata_pins_one(
    admin_connections: ConnectionsClient,
    service_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    # create_time has millisecond resolution and ties go to the smaller id: "a-us" sorts
    # before "eu", so the one created first is the oldest even within one millisecond.
    await admin_connections.create_connection(_create(tenant, connection_id="a-us"))
    eu = _create(tenant, connection_id="eu")
    eu.secret = "sk_test_eu"
    await admin_connections.create_connection(eu)
    plain = await _mint(admin_vault, tenant)
    pinned = await _mint(admin_vault, tenant, **{"connection.stripe": "eu"})
    assert (await service_connections.access_connection_secret(plain, "stripe")).secret == SECRET
    assert (
        await service_connections.access_connection_secret(pinned, "stripe")
    ).secret == "sk_test_eu"
    await admin_connections.rotate_connection_secret(
        f"tenants/{tenant}/connections/eu", "sk_test_eu2"
    )
    assert (
        await service_connections.access_connection_secret(pinned, "stripe")
    ).secret == "sk_test_eu2"
    await admin_connections.delete_connection(f"tenants/{tenant}/connections/eu")
    with pytest.raises(NotFound):
        await service_connections.access_connection_secret(pinned, "stripe")


async def test_the_secret_is_sealed_at_rest(
    admin_connections: ConnectionsClient, sealed_system: SealedSystem, tenant: str
) -> None:
    request = _create(tenant, connection_id="sealed")
    request.request_id = "sealed-1"
    await admin_connections.create_connection(request)
    con = await asyncpg.connect(sealed_system.env["KEYLEASH_DATABASE_URL"])
    try:
        row = await con.fetchrow("SELECT * FROM connections WHERE tenant_id = $1", tenant)
        dumped = await con.fetchval(
            "SELECT row_to_json(c)::text FROM connections c WHERE tenant_id = $1", tenant
        )
    finally:
        await con.close()
    assert row is not None
    assert SECRET.encode() not in bytes(row["sealed_secret"])
    assert SECRET not in dumped
    await admin_connections.delete_connection(f"tenants/{tenant}/connections/sealed")
    con = await asyncpg.connect(sealed_system.env["KEYLEASH_DATABASE_URL"])
    try:
        erased = await con.fetchval(
            "SELECT sealed_secret FROM connections WHERE tenant_id = $1", tenant
        )
    finally:
        await con.close()
    assert erased is None


async def test_the_service_reads_a_named_connection_for_vendor_callbacks(
    admin_connections: ConnectionsClient, service_connections: ConnectionsClient, tenant: str
) -> None:
    created = await admin_connections.create_connection(_create(tenant, vendor="twilio"))
    access = await service_connections.access_connection_secret("", "twilio", name=created.name)
    assert access.secret == SECRET and access.connection.name == created.name
    with pytest.raises(NotFound):
        await service_connections.access_connection_secret("", "stripe", name=created.name)
    with pytest.raises(PermissionDenied):
        await admin_connections.access_connection_secret("", "twilio", name=created.name)
    with pytest.raises(InvalidArgument):
        await service_connections.access_connection_secret("", "twilio")
