"""Create / rotate / access a tenant's usage webhook signing secret: who may (admins manage it,
only a service credential reads it back), and the secret shown once, sealed at rest."""

from __future__ import annotations

from keyleash_core.auth import ADMIN, SERVICE, Credential
from keyleash_core.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from keyleash_core.reasons import ErrorReason
from metering_service.alerts.secrets import generate_secret, open_secret, seal_secret
from metering_service.store.usage_webhook_secrets import SecretRow, UsageWebhookSecretStore


def secret_name(tenant_id: str) -> str:
    """The resource name, also the sealed secret's associated data."""
    return f"tenants/{tenant_id}/usageWebhookSecret"


class UsageWebhookSecrets:
    def __init__(self, store: UsageWebhookSecretStore, pepper: bytes) -> None:
        self.store = store
        self.pepper = pepper

    def _sealed(self, tenant_id: str, secret: str) -> bytes:
        return seal_secret(self.pepper, secret, secret_name(tenant_id))

    async def create(
        self, credential: Credential, tenant_id: str, given: str
    ) -> tuple[SecretRow, str]:
        _admin_only(credential)
        secret = given or generate_secret()
        row = await self.store.create(tenant_id, self._sealed(tenant_id, secret))
        if row is None:
            raise AlreadyExists(
                f"tenant {tenant_id!r} already has a usage webhook secret; rotate it instead",
                reason=ErrorReason.FAILED_PRECONDITION,
            )
        return row, secret

    async def rotate(
        self, credential: Credential, tenant_id: str, given: str
    ) -> tuple[SecretRow, str]:
        _admin_only(credential)
        secret = given or generate_secret()
        row = await self.store.rotate(tenant_id, self._sealed(tenant_id, secret))
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} has no usage webhook secret; create one")
        return row, secret

    async def access(self, credential: Credential, tenant_id: str) -> tuple[SecretRow, str]:
        if credential.kind != SERVICE:
            raise PermissionDenied("only a service credential may read a usage webhook secret")
        row = await self.store.get(tenant_id)
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} has no usage webhook secret")
        secret = open_secret(self.pepper, row.sealed_secret, secret_name(tenant_id))
        if secret is None:  # the pepper changed or the row was tampered with: fail closed
            raise FailedPrecondition("the usage webhook secret cannot be opened; rotate it")
        return row, secret


def _admin_only(credential: Credential) -> None:
    if credential.kind != ADMIN:
        raise PermissionDenied("only an admin credential may manage usage webhook secrets")
