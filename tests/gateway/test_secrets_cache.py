"""The gateway keeps a connection's secret in memory under the tenant's connections version:
one Vault call per allowed request, and still the rotated secret on the very next call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from keyleash.client import ConnectionsClient, RetryPolicy, Unavailable, VaultClient
from keyleash.vault.v1 import vault_pb2
from keyleash_core.redis import keyspace
from keyleash_gateway.keyleash import Keyleash, Upstream
from keyleash_ops.devstores import ManagedServer
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN, Stores, redis_node_url, service_env
from tests.gateway.conftest import SECRETS_KEY, Gateway
from tests.gateway.standins import StandIn
from tests.gateway.stripe_helpers import charge, stripe_tenant
from vault_service.server import create_server
from vault_service.settings import VaultSettings


@pytest.fixture
def secret_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The vendors the gateway read a connection secret for (AccessConnectionSecret), in order:
    the real call, counted."""
    reads: list[str] = []
    real = Keyleash.upstream

    async def counted(self: Keyleash, key: str, vendor: str) -> Upstream:
        reads.append(vendor)
        return await real(self, key, vendor)

    monkeypatch.setattr(Keyleash, "upstream", counted)
    yield reads


async def test_a_kept_secret_saves_the_vault_call_until_the_secret_is_rotated(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
    secret_reads: list[str],
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    for _ in range(3):
        await charge(t, gateway.url, 100)
    assert secret_reads == ["stripe"]  # read once, then kept
    new_secret = t.upstream_secret + "-rotated"
    stripe_upstream.accepted_secrets.add(new_secret)
    await admin_connections.rotate_connection_secret(t.connection, new_secret)
    stripe_upstream.accepted_secrets.discard(t.upstream_secret)
    for _ in range(2):
        await charge(t, gateway.url, 100)
    assert secret_reads == ["stripe", "stripe"]  # read again once, right after the rotation
    sent = [r.headers["Authorization"] for r in stripe_upstream.seen_by(t.run_id)]
    assert sent == [f"Bearer {t.upstream_secret}"] * 3 + [f"Bearer {new_secret}"] * 2


async def test_a_deleted_connection_is_not_used_from_memory(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    await charge(t, gateway.url, 100)
    await admin_connections.delete_connection(t.connection)
    with pytest.raises(Exception) as denied:
        await charge(t, gateway.url, 100)
    assert getattr(denied.value, "http_status", None) == 403
    assert len(stripe_upstream.seen_by(t.run_id)) == 1


async def test_without_a_version_every_call_reads_the_secret(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    stores: Stores,
    tenant: str,
    secret_reads: list[str],
) -> None:
    """Redis lost the version (a flush, a failover): no kept secret is trusted."""
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    await charge(t, gateway.url, 100)
    name = keyspace.connections_version(tenant)
    node = aioredis.Redis.from_url(await redis_node_url(stores, name))
    try:
        assert await node.delete(name) == 1
    finally:
        await node.aclose()
    for _ in range(2):
        await charge(t, gateway.url, 100)
    assert secret_reads == ["stripe"] * 3
    assert len(stripe_upstream.seen_by(t.run_id)) == 3


async def test_authorize_and_access_agree_on_the_version_and_each_change_renews_it(
    admin_connections: ConnectionsClient,
    service_connections: ConnectionsClient,
    admin_vault: VaultClient,
    stripe_upstream: StandIn,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)

    async def versions() -> tuple[str, str]:
        decision = await admin_vault.authorize(
            vault_pb2.AuthorizeRequest(key=t.key, scope="stripe.charges.write")
        )
        assert decision.decision == vault_pb2.DECISION_ALLOW
        access = await service_connections.access_connection_secret(t.key, "stripe")
        return decision.connections_version, access.connections_version

    first = await versions()
    assert first[0] and first[0] == first[1]
    await admin_connections.rotate_connection_secret(t.connection, "sk_test_other")
    rotated = await versions()
    assert rotated[0] == rotated[1] and rotated[0] != first[0]
    await admin_connections.create_connection(
        tenant_id=tenant,
        connection=vault_pb2.Connection(vendor="resend", base_url=stripe_upstream.url),
        secret="re_test_x",
    )
    created = await versions()
    assert created[0] == created[1] and created[0] not in (first[0], rotated[0])
    denied = await admin_vault.authorize(vault_pb2.AuthorizeRequest(key=t.key, scope="nope.write"))
    assert denied.decision == vault_pb2.DECISION_DENY and not denied.connections_version


@pytest.fixture
async def own_redis_connections(
    stores: Stores, own_redis: ManagedServer
) -> AsyncIterator[tuple[ConnectionsClient, ConnectionsClient, ManagedServer]]:
    """A vault on a Redis of its own (which the test kills), with admin and service clients."""
    env = service_env(stores) | {
        "KEYLEASH_SECRETS_KEY": SECRETS_KEY,
        "KEYLEASH_REDIS_URL": own_redis.url,
        "KEYLEASH_STORE_TIMEOUT_SECONDS": "1",
    }
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    target = f"127.0.0.1:{built.port}"
    admin = ConnectionsClient(target, token=ADMIN_TOKEN, retry=RetryPolicy(max_attempts=1))
    service = ConnectionsClient(target, token=SERVICE_TOKEN)
    try:
        yield admin, service, own_redis
    finally:
        await admin.close()
        await service.close()
        await built.stop(1)


async def test_a_rotation_redis_cannot_be_told_of_is_not_made(
    own_redis_connections: tuple[ConnectionsClient, ConnectionsClient, ManagedServer],
    tenant: str,
) -> None:
    """Withdrawing the version comes first: without Redis the secret stays as it was (else a
    gateway could keep using the old one unseen)."""
    admin, service, redis_server = own_redis_connections
    created = await admin.create_connection(
        tenant_id=tenant, connection=vault_pb2.Connection(vendor="stripe"), secret="sk_test_old"
    )
    before = await service.access_connection_secret("", "stripe", name=created.name)
    assert before.connections_version
    redis_server.kill()
    with pytest.raises(Unavailable):
        await admin.rotate_connection_secret(created.name, "sk_test_new")
    redis_server.restart()  # empty: no version until the next change
    after = await service.access_connection_secret("", "stripe", name=created.name)
    assert (after.secret, after.connections_version) == ("sk_test_old", "")
    await admin.rotate_connection_secret(created.name, "sk_test_new")
    rotated = await service.access_connection_secret("", "stripe", name=created.name)
    assert rotated.secret == "sk_test_new" and rotated.connections_version
