"""The connection RPCs of VaultService: proto <-> use case, nothing else.

A mixin of VaultServicer (servicer.py), kept apart so the key RPCs and the connection RPCs each
read in one file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

from google.protobuf import timestamp_pb2

from keyleash.vault.v1 import vault_pb2
from keyleash_core.auth import Credential
from keyleash_core.errors import InvalidArgument
from keyleash_core.validation import tenant_id, text
from vault_service.store.connections import ConnectionRow
from vault_service.usecases.authorize import request_digest
from vault_service.usecases.manage_connections import (
    ConnectionAdmin,
    ConnectionSpec,
    validate_secret,
    validate_spec_fields,
)

Context: TypeAlias = Any


def connection_to_proto(row: ConnectionRow) -> vault_pb2.Connection:
    """The resource as callers see it: never the secret, sealed or not."""
    connection = vault_pb2.Connection(
        name=row.name,
        connection_id=row.connection_id,
        tenant_id=row.tenant_id,
        vendor=row.vendor,
        base_url=row.base_url,
        create_time=_timestamp(row.create_time),
    )
    if row.rotate_time is not None:
        connection.rotate_time.CopyFrom(_timestamp(row.rotate_time))
    return connection


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


class ConnectionRpcs:
    """CreateConnection ... AccessConnectionSecret; needs `_connections` and `_credential`."""

    _connections: ConnectionAdmin

    def _credential(self, context: Context) -> Credential:
        raise NotImplementedError

    async def CreateConnection(
        self, request: vault_pb2.CreateConnectionRequest, context: Context
    ) -> vault_pb2.Connection:
        credential = self._credential(context)
        given = request.connection
        spec = ConnectionSpec(
            tenant_id=tenant_id(request.tenant_id, "tenant_id", required=True),
            connection_id=text(given.connection_id, "connection.connection_id", limit=63),
            vendor=text(given.vendor, "connection.vendor", required=True, limit=32),
            base_url=text(given.base_url, "connection.base_url", limit=512),
            request_id=text(request.request_id, "request_id", limit=256),
            digest=request_digest(request.SerializeToString(deterministic=True)),
        )
        validate_spec_fields(spec.vendor, spec.connection_id, spec.base_url)
        secret = validate_secret(request.secret)
        row = await self._connections.create(credential, spec, secret)
        return connection_to_proto(row)

    async def GetConnection(
        self, request: vault_pb2.GetConnectionRequest, context: Context
    ) -> vault_pb2.Connection:
        row = await self._connections.get(
            self._credential(context), text(request.name, "name", required=True)
        )
        return connection_to_proto(row)

    async def ListConnections(
        self, request: vault_pb2.ListConnectionsRequest, context: Context
    ) -> vault_pb2.ListConnectionsResponse:
        if not 0 <= request.page_size <= 1000:
            raise InvalidArgument("page_size", "between 0 and 1000")
        rows, token = await self._connections.list(
            self._credential(context),
            tenant_id(request.tenant_id, "tenant_id"),
            request.page_size,
            text(request.page_token, "page_token", limit=512),
        )
        return vault_pb2.ListConnectionsResponse(
            connections=[connection_to_proto(r) for r in rows], next_page_token=token
        )

    async def RotateConnectionSecret(
        self, request: vault_pb2.RotateConnectionSecretRequest, context: Context
    ) -> vault_pb2.Connection:
        credential = self._credential(context)
        name = text(request.name, "name", required=True)
        row = await self._connections.rotate(credential, name, validate_secret(request.secret))
        return connection_to_proto(row)

    async def DeleteConnection(
        self, request: vault_pb2.DeleteConnectionRequest, context: Context
    ) -> vault_pb2.DeleteConnectionResponse:
        row = await self._connections.delete(
            self._credential(context), text(request.name, "name", required=True)
        )
        return vault_pb2.DeleteConnectionResponse(connection=connection_to_proto(row))

    async def AccessConnectionSecret(
        self, request: vault_pb2.AccessConnectionSecretRequest, context: Context
    ) -> vault_pb2.AccessConnectionSecretResponse:
        credential = self._credential(context)
        name = text(request.name, "name", limit=256)
        access = await self._connections.access(
            credential,
            text(request.key, "key", required=not name, limit=256),
            text(request.vendor, "vendor", required=True, limit=32),
            name,
        )
        return vault_pb2.AccessConnectionSecretResponse(
            connection=connection_to_proto(access.connection),
            secret=access.secret,
            key_id=access.key_id,
            connections_version=access.version,
        )
