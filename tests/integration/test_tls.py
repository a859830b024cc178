"""TLS and mutual TLS on the servers, with a throwaway CA."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2

from tests.conftest import Stores, service_env
from tests.typed_stubs import health_stub
from vault_service.server import create_server
from vault_service.settings import VaultSettings


def write(path: Path, blob: trustme.Blob) -> str:
    blob.write_to_path(str(path))
    return str(path)


async def check(target: str, credentials: grpc.ChannelCredentials) -> int:
    async with grpc.aio.secure_channel(target, credentials) as channel:
        reply = await health_stub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(reply.status)


@pytest.mark.parametrize("mutual", [False, True])
async def test_tls_and_mutual_tls(stores: Stores, tmp_path: Path, mutual: bool) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost")
    env = service_env(stores) | {
        "KEYLEASH_TLS_CERT_FILE": write(tmp_path / "cert.pem", server_cert.cert_chain_pems[0]),
        "KEYLEASH_TLS_KEY_FILE": write(tmp_path / "key.pem", server_cert.private_key_pem),
    }
    if mutual:
        env["KEYLEASH_TLS_CLIENT_CA_FILE"] = write(tmp_path / "ca.pem", ca.cert_pem)
    built = await create_server(VaultSettings.from_env(env), "127.0.0.1:0")
    target = f"localhost:{built.port}"
    try:
        root = ca.cert_pem.bytes()
        client_cert = ca.issue_cert("agent-runtime")
        with_cert = grpc.ssl_channel_credentials(
            root, client_cert.private_key_pem.bytes(), client_cert.cert_chain_pems[0].bytes()
        )
        assert await check(target, with_cert) == health_pb2.HealthCheckResponse.SERVING
        if mutual:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await check(target, grpc.ssl_channel_credentials(root))
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        else:
            assert await check(target, grpc.ssl_channel_credentials(root)) == 1
        with pytest.raises(grpc.aio.AioRpcError):
            async with grpc.aio.insecure_channel(target) as channel:
                await health_stub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    finally:
        await built.stop(1)
