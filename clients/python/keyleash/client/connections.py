"""`ConnectionsClient`: the vendor-connection RPCs of VaultService (asyncio).

Same conventions as `VaultClient` (a request message or its fields as keywords, `timeout`,
`token`), on the same target (`KEYLEASH_VAULT_TARGET`). Secrets go in, never out, except through
`access_connection_secret`, which only the gateway's service credential may call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from keyleash.client._base import AsyncClientBase, named_request
from keyleash.client._transport import build_request
from keyleash.client.config import VAULT_TARGET_ENV
from keyleash.vault.v1 import vault_pb2 as V
from keyleash.vault.v1 import vault_pb2_grpc


class ConnectionsClient(AsyncClientBase):
    """Async client of CreateConnection ... AccessConnectionSecret."""

    TARGET_ENV: ClassVar[str] = VAULT_TARGET_ENV

    def _make_stub(self, channel: Any) -> Any:
        stub: Any = vault_pb2_grpc.VaultServiceStub  # generated without annotations
        return stub(channel)

    async def create_connection(
        self,
        request: V.CreateConnectionRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Any,
    ) -> V.Connection:
        """Stores a connection (retried on UNAVAILABLE only when request_id is set)."""
        built = build_request(V.CreateConnectionRequest, request, fields)
        return await self._invoker.unary("CreateConnection", built, V.Connection, timeout, token)

    async def get_connection(
        self,
        request: V.GetConnectionRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.Connection:
        """One connection (a request, or its name)."""
        built = named_request(V.GetConnectionRequest, request, {})
        return await self._invoker.unary("GetConnection", built, V.Connection, timeout, token)

    async def list_connections(
        self,
        request: V.ListConnectionsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Any,
    ) -> V.ListConnectionsResponse:
        """One page of a tenant's connections, oldest first."""
        built = build_request(V.ListConnectionsRequest, request, fields)
        return await self._invoker.unary(
            "ListConnections", built, V.ListConnectionsResponse, timeout, token
        )

    async def iter_connections(
        self, tenant_id: str, *, timeout: float | None = None, token: str | None = None
    ) -> AsyncIterator[V.Connection]:
        """Every connection of a tenant, page after page."""
        built = V.ListConnectionsRequest(tenant_id=tenant_id)
        while True:
            page = await self._invoker.unary(
                "ListConnections", built, V.ListConnectionsResponse, timeout, token
            )
            for connection in page.connections:
                yield connection
            if not page.next_page_token:
                return
            built.page_token = page.next_page_token

    async def rotate_connection_secret(
        self, name: str, secret: str, *, timeout: float | None = None, token: str | None = None
    ) -> V.Connection:
        """Replaces the secret; the gateway's next call uses it. Never retried."""
        built = V.RotateConnectionSecretRequest(name=name, secret=secret)
        return await self._invoker.unary(
            "RotateConnectionSecret", built, V.Connection, timeout, token
        )

    async def delete_connection(
        self, name: str, *, timeout: float | None = None, token: str | None = None
    ) -> V.DeleteConnectionResponse:
        """Deletes a connection and erases its secret. Never retried."""
        built = V.DeleteConnectionRequest(name=name)
        return await self._invoker.unary(
            "DeleteConnection", built, V.DeleteConnectionResponse, timeout, token
        )

    async def access_connection_secret(
        self,
        key: str,
        vendor: str,
        *,
        name: str = "",
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.AccessConnectionSecretResponse:
        """The clear secret the key's connection for `vendor` holds, or the connection `name`
        holds when key is empty (service credential)."""
        built = V.AccessConnectionSecretRequest(key=key, vendor=vendor, name=name)
        return await self._invoker.unary(
            "AccessConnectionSecret", built, V.AccessConnectionSecretResponse, timeout, token
        )
