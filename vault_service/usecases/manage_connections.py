"""Vendor connections: storing, rotating and deleting a tenant's upstream secrets (admin), and
handing the clear secret to the egress gateway (service credential) for the key it serves.

The secret is sealed here before it reaches the store and opened here only for the gateway;
nothing else in the vault ever sees it in clear, and no error or log line names it.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from keyleash_core.auth import ADMIN, SERVICE, Credential
from keyleash_core.clock import Clock
from keyleash_core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keyleash_core.reasons import ErrorReason
from vault_service.domain.sealing import SealingError, open_sealed, seal
from vault_service.store.connection_versions import ConnectionVersions
from vault_service.store.connections import ConnectionRow, ConnectionStore, connection_name
from vault_service.usecases.key_chains import KeyChains

_CONNECTION_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_VENDOR = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_SECRET = 8192
# Key metadata that pins a key to one connection of a vendor, e.g. "connection.stripe": "eu".
PIN_PREFIX = "connection."


@dataclass(frozen=True)
class ConnectionSpec:
    """A validated CreateConnection request (the secret travels separately)."""

    tenant_id: str
    connection_id: str  # "" = assign one
    vendor: str
    base_url: str
    request_id: str
    digest: bytes  # of the serialized request; keyed by the pepper before it is stored


@dataclass(frozen=True)
class Access:
    """What the gateway needs to forward one call: the connection, its clear secret, the key."""

    connection: ConnectionRow
    secret: str
    key_id: str
    version: str  # the tenant's connections version read before the secret (may be "")


def validate_spec_fields(vendor: str, connection_id: str, base_url: str) -> None:
    if not _VENDOR.match(vendor):
        raise InvalidArgument("connection.vendor", "lowercase letters, digits, '-', '_'")
    if connection_id and not _CONNECTION_ID.match(connection_id):
        raise InvalidArgument(
            "connection.connection_id", "lowercase letters, digits and '-', at most 63"
        )
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise InvalidArgument("connection.base_url", "an http(s) URL without a query")


def validate_secret(secret: str, field_path: str = "secret") -> str:
    if not secret:
        raise InvalidArgument(field_path, "required")
    if len(secret) > MAX_SECRET or any(c in secret for c in "\x00\r\n"):
        raise InvalidArgument(field_path, f"one line of at most {MAX_SECRET} characters")
    return secret


def parse_connection_name(name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "connections" or not all(parts):
        raise InvalidArgument("name", "tenants/{tenant_id}/connections/{connection_id}")
    return parts[1], parts[3]


class ConnectionAdmin:
    """The connection use cases. One per process."""

    def __init__(
        self,
        store: ConnectionStore,
        chains: KeyChains,
        master_key: bytes | None,
        clock: Clock,
        versions: ConnectionVersions,
    ) -> None:
        self._versions = versions
        self._store = store
        self._vault = chains
        self._master = master_key
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now_ms() / 1000, tz=UTC)

    def _master_key(self) -> bytes:
        if self._master is None:
            raise FailedPrecondition(
                "connections need KEYLEASH_SECRETS_KEY (base64 of 32 bytes) on the vault",
                reason=ErrorReason.SECRETS_KEY_UNAVAILABLE,
            )
        return self._master

    async def create(
        self, credential: Credential, spec: ConnectionSpec, secret: str
    ) -> ConnectionRow:
        _admin_only(credential)
        master = self._master_key()
        digest = hmac.digest(self._vault.pepper, spec.digest, "sha256")
        if spec.request_id:
            replay = await self._replay(credential, spec, digest)
            if replay is not None:
                return replay
        connection_id = spec.connection_id or "c-" + secrets.token_hex(8)
        name = connection_name(spec.tenant_id, connection_id)
        row = ConnectionRow(
            tenant_id=spec.tenant_id,
            connection_id=connection_id,
            vendor=spec.vendor,
            base_url=spec.base_url,
            create_time=self._now(),
            rotate_time=None,
            sealed_secret=seal(master, secret, name),
        )
        await self._versions.withdraw(spec.tenant_id)
        try:
            outcome = await self._store.insert(
                row, created_by=credential.actor, request_id=spec.request_id, request_digest=digest
            )
        finally:
            await self._versions.renew(spec.tenant_id)
        if outcome == "taken":
            raise AlreadyExists(f"{name} exists (or existed)", reason=ErrorReason.CONNECTION_EXISTS)
        if outcome == "replay":
            replay = await self._replay(credential, spec, digest)
            assert replay is not None
            return replay
        return row

    async def _replay(
        self, credential: Credential, spec: ConnectionSpec, digest: bytes
    ) -> ConnectionRow | None:
        found = await self._store.find_create(credential.actor, spec.request_id)
        if found is None:
            return None
        row, stored_digest = found
        if not hmac.compare_digest(stored_digest, digest):
            raise AlreadyExists(
                f"request_id {spec.request_id!r} was used for a different CreateConnection",
                reason=ErrorReason.REQUEST_ID_REUSED,
            )
        return row

    async def get(self, credential: Credential, name: str) -> ConnectionRow:
        _admin_only(credential)
        return await self._live(name)

    async def _live(self, name: str) -> ConnectionRow:
        tenant_id, connection_id = parse_connection_name(name)
        row = await self._store.get(tenant_id, connection_id)
        if row is None:
            raise NotFound(f"no connection named {name!r}", reason=ErrorReason.CONNECTION_NOT_FOUND)
        return row

    async def list(
        self, credential: Credential, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[ConnectionRow], str]:
        _admin_only(credential)
        if not tenant_id:
            raise InvalidArgument("tenant_id", "required")
        size = page_size or 100
        rows = await self._store.list(tenant_id, _decode_token(page_token), size + 1)
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = _encode_token(rows[-1].create_time, rows[-1].connection_id)
        return rows, token

    async def rotate(self, credential: Credential, name: str, secret: str) -> ConnectionRow:
        _admin_only(credential)
        master = self._master_key()
        tenant_id, connection_id = parse_connection_name(name)
        sealed = seal(master, secret, name)
        await self._versions.withdraw(tenant_id)
        try:
            row = await self._store.rotate(tenant_id, connection_id, sealed, self._now())
        finally:
            await self._versions.renew(tenant_id)
        if row is None:
            raise NotFound(f"no connection named {name!r}", reason=ErrorReason.CONNECTION_NOT_FOUND)
        return row

    async def delete(self, credential: Credential, name: str) -> ConnectionRow:
        _admin_only(credential)
        tenant_id, connection_id = parse_connection_name(name)
        await self._versions.withdraw(tenant_id)
        try:
            row = await self._store.delete(tenant_id, connection_id, self._now())
        finally:
            await self._versions.renew(tenant_id)
        if row is None:
            raise NotFound(f"no connection named {name!r}", reason=ErrorReason.CONNECTION_NOT_FOUND)
        return row

    async def access(
        self, credential: Credential, key_secret: str, vendor: str, name: str = ""
    ) -> Access:
        """The clear secret of the connection the key uses for `vendor`, or of the connection
        `name` (service only)."""
        if credential.kind != SERVICE:
            raise PermissionDenied("only the gateway's service credential reads secrets")
        master = self._master_key()
        if name:
            version = await self._versions.current(parse_connection_name(name)[0])
            named = await self._live(name)
            if named.vendor != vendor:
                raise NotFound(
                    f"{name} is not a {vendor} connection",
                    reason=ErrorReason.CONNECTION_NOT_FOUND,
                )
            return Access(named, self._open(master, named), "", version)
        chain = await self._vault.for_secret(key_secret)
        if chain is None:
            raise NotFound("the key names no key", reason=ErrorReason.KEY_NOT_FOUND)
        key = chain[0]
        # Read before the connection (connection_versions.py): the secret is at least this new.
        version = await self._versions.current(key.tenant_id)
        pinned = key.metadata.get(PIN_PREFIX + vendor, "")
        if pinned:
            row = await self._store.get(key.tenant_id, pinned)
            row = row if row is not None and row.vendor == vendor else None
        else:
            row = await self._store.oldest_for_vendor(key.tenant_id, vendor)
        if row is None or row.sealed_secret is None:
            raise NotFound(
                f"tenant {key.tenant_id} has no {vendor} connection for {key.name}",
                reason=ErrorReason.CONNECTION_NOT_FOUND,
            )
        return Access(row, self._open(master, row), key.key_id, version)

    @staticmethod
    def _open(master: bytes, row: ConnectionRow) -> str:
        if row.sealed_secret is None:
            raise NotFound(f"{row.name} was deleted", reason=ErrorReason.CONNECTION_NOT_FOUND)
        try:
            return open_sealed(master, row.sealed_secret, row.name)
        except SealingError as error:
            raise FailedPrecondition(
                f"{row.name}: {error}", reason=ErrorReason.SECRETS_KEY_UNAVAILABLE
            ) from None


def _admin_only(credential: Credential) -> None:
    if credential.kind != ADMIN:
        raise PermissionDenied("connections are managed with an admin credential")


def _encode_token(created: datetime, connection_id: str) -> str:
    raw = json.dumps([created.isoformat(), connection_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, connection_id = json.loads(raw)
        return datetime.fromisoformat(created), str(connection_id)
    except (ValueError, TypeError):
        raise InvalidArgument("page_token", "not a token this service issued") from None
