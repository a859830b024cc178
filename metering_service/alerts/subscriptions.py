"""CreateAlertSubscription ... ListAlertDeliveries: who may (admins), what is valid, and the
signing secret shown once (a retry with the same request_id shows it again)."""

from __future__ import annotations

import hashlib
import secrets as random_ids
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyleash_core.auth import ADMIN, Credential
from keyleash_core.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from metering_service.alerts import domain
from metering_service.alerts.secrets import generate_secret, open_secret, seal_secret
from metering_service.alerts.store import AlertStore, DeliveryRow, SubscriptionRow

FORMATS = ("standard", "slack")
DELIVERY_STATES = ("", "pending", "delivered", "dead")


@dataclass(frozen=True)
class SubscriptionSpec:
    tenant_id: str
    url: str
    event_types: tuple[str, ...]
    format: str
    secret: str  # empty: generate one
    request_id: str
    digest: bytes


def validate_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # e.g. "http://[::1" or a port that is not a number
        raise InvalidArgument("subscription.url", "not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidArgument("subscription.url", "must be an http or https URL with a host")
    return url


def validate_event_types(types: tuple[str, ...]) -> tuple[str, ...]:
    if not types:
        raise InvalidArgument("subscription.event_types", "at least one event type")
    unknown = domain.unknown_event_types(types)
    if unknown:
        raise InvalidArgument("subscription.event_types", f"unknown event type {unknown[0]!r}")
    return tuple(dict.fromkeys(types))


def _admin_only(credential: Credential) -> None:
    if credential.kind != ADMIN:
        raise PermissionDenied("only an admin credential may manage alert subscriptions")


class AlertSubscriptions:
    def __init__(self, store: AlertStore, pepper: bytes) -> None:
        self.store = store
        self.pepper = pepper

    async def create(
        self, credential: Credential, spec: SubscriptionSpec
    ) -> tuple[SubscriptionRow, str]:
        """The subscription and its secret."""
        _admin_only(credential)
        if spec.request_id:
            earlier = await self.store.by_request(spec.tenant_id, spec.request_id)
            if earlier is not None:
                return self._replayed(earlier, spec.digest)
        subscription_id = "as_" + random_ids.token_hex(12)
        name = f"tenants/{spec.tenant_id}/alertSubscriptions/{subscription_id}"
        secret = spec.secret or generate_secret()
        row = await self.store.create(
            (
                subscription_id,
                spec.tenant_id,
                spec.url,
                seal_secret(self.pepper, secret, name),
                list(spec.event_types),
                spec.format,
                spec.request_id,
                spec.digest,
            )
        )
        if row is None:  # a concurrent retry with the same request_id won
            earlier = await self.store.by_request(spec.tenant_id, spec.request_id)
            assert earlier is not None
            return self._replayed(earlier, spec.digest)
        return row, secret

    def _replayed(self, row: SubscriptionRow, digest: bytes) -> tuple[SubscriptionRow, str]:
        if row.request_digest != digest:
            raise AlreadyExists("request_id was used with a different request")
        return row, open_secret(self.pepper, row.sealed_secret, row.name) or ""

    async def list_for(self, credential: Credential, tenant_id: str) -> list[SubscriptionRow]:
        _admin_only(credential)
        return await self.store.list_for(tenant_id)

    async def delete(self, credential: Credential, name: str) -> SubscriptionRow:
        _admin_only(credential)
        tenant_id, subscription_id = parse_name(name)
        row = await self.store.delete(tenant_id, subscription_id)
        if row is None:
            raise NotFound(f"no alert subscription {name}")
        return row

    async def deliveries(
        self,
        credential: Credential,
        tenant_id: str,
        subscription: str,
        state: str,
        after: int,
        limit: int,
    ) -> list[DeliveryRow]:
        _admin_only(credential)
        subscription_id = ""
        if subscription:
            owner, subscription_id = parse_name(subscription, "subscription")
            if owner != tenant_id:
                raise InvalidArgument("subscription", "belongs to another tenant")
        return await self.store.deliveries(tenant_id, subscription_id, state, after, limit)


def parse_name(name: str, field: str = "name") -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "alertSubscriptions":
        raise InvalidArgument(field, "must be tenants/{tenant}/alertSubscriptions/{id}")
    return parts[1], parts[3]


def request_digest(serialized: bytes) -> bytes:
    return hashlib.sha256(serialized).digest()
