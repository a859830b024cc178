"""A brute-force guesser of credentials is slowed; legitimate traffic is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from tests.conftest import Stores, bearer, service_env
from tests.integration.test_vault import error_info
from tests.integration.vault_helpers import admin_token, mint
from tests.typed_stubs import health_stub
from vault_service.server import create_server
from vault_service.settings import VaultSettings

LIMIT = 30  # FailedAttemptLimiter's default: failed credentials per peer per minute


@pytest.fixture
async def lone_vault(stores: Stores) -> AsyncIterator[grpc.aio.Channel]:
    """A vault of this test's own: its limiter state must not reach the other tests."""
    built = await create_server(VaultSettings.from_env(service_env(stores)), "127.0.0.1:0")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{built.port}")
    try:
        yield channel
    finally:
        await channel.close()
        await built.stop(1)


async def test_a_credential_guesser_is_refused_and_told_when_to_retry(
    lone_vault: grpc.aio.Channel, vault: Any, tenant: str
) -> None:
    stub = vault_pb2_grpc.VaultServiceStub(lone_vault)
    minted = await mint(stub, admin_token(), tenant)
    lookup = vault_pb2.GetKeyRequest(name=minted.key.name)
    for _ in range(3 * LIMIT):  # legitimate calls are never counted
        await stub.GetKey(lookup, metadata=bearer(admin_token()))
    for attempt in range(LIMIT):
        with pytest.raises(grpc.aio.AioRpcError) as guessed:
            await stub.GetKey(lookup, metadata=bearer(f"guess-{attempt}"))
        assert guessed.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetKey(lookup, metadata=bearer("guess-once-more"))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(refused.value).reason == "TOO_MANY_ATTEMPTS"
    # The peer is refused as a whole until the window passes, even with a good credential...
    with pytest.raises(grpc.aio.AioRpcError) as also_refused:
        await stub.GetKey(lookup, metadata=bearer(admin_token()))
    assert also_refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # ...but health checks still answer, and another vault process is not affected.
    health = health_stub(lone_vault)
    reply = await health.Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    again = await vault.GetKey(lookup, metadata=bearer(admin_token()))
    assert again.name == minted.key.name
