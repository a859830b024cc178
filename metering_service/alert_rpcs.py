"""The alert RPCs of MeteringService: proto <-> use case, nothing else.

A mixin of MeteringServicer (servicer.py), kept apart so spend and alerts each read in one file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

from google.protobuf import timestamp_pb2

from keyleash.metering.v1 import alerts_pb2
from keyleash_core import page_tokens
from keyleash_core.auth import Credential
from keyleash_core.errors import InvalidArgument
from keyleash_core.validation import strings, text
from metering_service.alerts.secrets import validate_secret
from metering_service.alerts.store import DeliveryRow, SubscriptionRow
from metering_service.alerts.subscriptions import (
    AlertSubscriptions,
    SubscriptionSpec,
    request_digest,
    validate_event_types,
    validate_url,
)

Context: TypeAlias = Any
_FORMATS = {
    alerts_pb2.ALERT_FORMAT_UNSPECIFIED: "standard",
    alerts_pb2.ALERT_FORMAT_STANDARD: "standard",
    alerts_pb2.ALERT_FORMAT_SLACK: "slack",
}
_FORMAT_TO_PROTO = {
    "standard": alerts_pb2.ALERT_FORMAT_STANDARD,
    "slack": alerts_pb2.ALERT_FORMAT_SLACK,
}
_STATES = {
    alerts_pb2.ALERT_DELIVERY_STATE_UNSPECIFIED: "",
    alerts_pb2.ALERT_DELIVERY_STATE_PENDING: "pending",
    alerts_pb2.ALERT_DELIVERY_STATE_DELIVERED: "delivered",
    alerts_pb2.ALERT_DELIVERY_STATE_DEAD: "dead",
}
_STATE_TO_PROTO = {name: value for value, name in _STATES.items() if name}


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def subscription_to_proto(row: SubscriptionRow) -> alerts_pb2.AlertSubscription:
    """What callers see: never the secret."""
    return alerts_pb2.AlertSubscription(
        name=row.name,
        subscription_id=row.subscription_id,
        tenant_id=row.tenant_id,
        url=row.url,
        event_types=row.event_types,
        format=_FORMAT_TO_PROTO[row.format],
        create_time=_timestamp(row.create_time),
    )


def delivery_to_proto(row: DeliveryRow) -> alerts_pb2.AlertDelivery:
    delivery = alerts_pb2.AlertDelivery(
        event_id=row.event_id,
        subscription=f"tenants/{row.tenant_id}/alertSubscriptions/{row.subscription_id}",
        event_type=row.event_type,
        state=_STATE_TO_PROTO[row.state],
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        create_time=_timestamp(row.create_time),
        payload=row.payload,
    )
    if row.deliver_time is not None:
        delivery.deliver_time.CopyFrom(_timestamp(row.deliver_time))
    return delivery


def _tenant(value: str) -> str:
    tenant_id = text(value, "tenant_id", required=True, limit=128)
    if "/" in tenant_id:
        raise InvalidArgument("tenant_id", "must not contain '/'")
    return tenant_id


def _after(position: list[Any] | None) -> int:
    """The last delivery id of the previous page (0 for the first page)."""
    if not position:
        return 0
    if len(position) != 1 or not isinstance(position[0], int):
        raise InvalidArgument("page_token", "not a token this service issued")
    return position[0]


class AlertRpcs:
    """CreateAlertSubscription ... ListAlertDeliveries; needs `_alerts` and `_credential`."""

    _alerts: AlertSubscriptions

    def _credential(self, context: Context) -> Credential:
        raise NotImplementedError

    async def CreateAlertSubscription(
        self, request: alerts_pb2.CreateAlertSubscriptionRequest, context: Context
    ) -> alerts_pb2.CreateAlertSubscriptionResponse:
        credential = self._credential(context)
        given = request.subscription
        if given.format not in _FORMATS:
            raise InvalidArgument("subscription.format", "unknown format")
        spec = SubscriptionSpec(
            tenant_id=_tenant(request.tenant_id),
            url=validate_url(text(given.url, "subscription.url", required=True, limit=2048)),
            event_types=validate_event_types(
                strings(given.event_types, "subscription.event_types")
            ),
            format=_FORMATS[given.format],
            secret=validate_secret(request.signing_secret) if request.signing_secret else "",
            request_id=text(request.request_id, "request_id", limit=256),
            digest=request_digest(request.SerializeToString(deterministic=True)),
        )
        row, secret = await self._alerts.create(credential, spec)
        return alerts_pb2.CreateAlertSubscriptionResponse(
            subscription=subscription_to_proto(row), signing_secret=secret
        )

    async def ListAlertSubscriptions(
        self, request: alerts_pb2.ListAlertSubscriptionsRequest, context: Context
    ) -> alerts_pb2.ListAlertSubscriptionsResponse:
        rows = await self._alerts.list_for(self._credential(context), _tenant(request.tenant_id))
        return alerts_pb2.ListAlertSubscriptionsResponse(
            subscriptions=[subscription_to_proto(r) for r in rows]
        )

    async def DeleteAlertSubscription(
        self, request: alerts_pb2.DeleteAlertSubscriptionRequest, context: Context
    ) -> alerts_pb2.DeleteAlertSubscriptionResponse:
        row = await self._alerts.delete(
            self._credential(context), text(request.name, "name", required=True, limit=300)
        )
        return alerts_pb2.DeleteAlertSubscriptionResponse(subscription=subscription_to_proto(row))

    async def ListAlertDeliveries(
        self, request: alerts_pb2.ListAlertDeliveriesRequest, context: Context
    ) -> alerts_pb2.ListAlertDeliveriesResponse:
        credential = self._credential(context)
        if not 0 <= request.page_size <= 1000:
            raise InvalidArgument("page_size", "between 0 and 1000")
        if request.state not in _STATES:
            raise InvalidArgument("state", "unknown state")
        tenant_id, state = _tenant(request.tenant_id), _STATES[request.state]
        subscription = text(request.subscription, "subscription", limit=300)
        tag = page_tokens.filter_tag(tenant_id, subscription, state)
        position = page_tokens.decode(request.page_token, tag)
        after = _after(position)
        limit = request.page_size or 100
        rows = await self._alerts.deliveries(
            credential, tenant_id, subscription, state, after, limit + 1
        )
        token = page_tokens.encode([rows[limit - 1].delivery_id], tag) if len(rows) > limit else ""
        return alerts_pb2.ListAlertDeliveriesResponse(
            deliveries=[delivery_to_proto(r) for r in rows[:limit]], next_page_token=token
        )
