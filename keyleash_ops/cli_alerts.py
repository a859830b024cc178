"""`keyleash alerts subscribe|list|delete|deliveries`: a tenant's alert webhooks (admin token)."""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from google.protobuf.message import Message

from keyleash.client import SyncMeteringClient
from keyleash.client.errors import from_rpc_error
from keyleash.client.run import call_metadata
from keyleash.metering.v1 import alerts_pb2 as A
from keyleash.metering.v1 import metering_pb2_grpc
from keyleash_ops.cli_common import (
    EXIT_OK,
    connection_parent,
    format_time,
    guarded,
    metering_client,
    print_json,
    print_table,
)

FORMATS = {"standard": A.ALERT_FORMAT_STANDARD, "slack": A.ALERT_FORMAT_SLACK}
STATES = {"pending": A.ALERT_DELIVERY_STATE_PENDING, "delivered": A.ALERT_DELIVERY_STATE_DELIVERED,
          "dead": A.ALERT_DELIVERY_STATE_DEAD}  # fmt: skip


def _call(metering: SyncMeteringClient, method: str, request: Message, timeout: float) -> Any:
    """One alert RPC on the client's channel (the typed client has no alert methods yet)."""
    stub: Any = metering_pb2_grpc.MeteringServiceStub(metering.channel)
    try:
        return getattr(stub, method)(
            request, metadata=call_metadata(metering.token), timeout=timeout
        )
    except grpc.RpcError as failure:
        raise from_rpc_error(failure) from failure


def _subscription_rows(subscriptions: list[A.AlertSubscription]) -> list[list[str]]:
    return [
        [s.name, s.url, ",".join(s.event_types), A.AlertFormat.Name(s.format)[13:].lower()]
        for s in subscriptions
    ]


def _subscribe(args: argparse.Namespace) -> int:
    request = A.CreateAlertSubscriptionRequest(
        tenant_id=args.tenant,
        subscription=A.AlertSubscription(
            url=args.url, event_types=args.event, format=FORMATS[args.format]
        ),
        signing_secret=args.secret or "",
        request_id=args.request_id or "",
    )
    with metering_client(args) as metering:
        reply = _call(metering, "CreateAlertSubscription", request, args.timeout)
    if args.json:
        print_json(reply)
        return EXIT_OK
    print_table(["name", "url", "events", "format"], _subscription_rows([reply.subscription]))
    print(f"\nsigning secret (shown only now): {reply.signing_secret}")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    with metering_client(args) as metering:
        request = A.ListAlertSubscriptionsRequest(tenant_id=args.tenant)
        reply = _call(metering, "ListAlertSubscriptions", request, args.timeout)
    if args.json:
        print_json(reply)
    else:
        print_table(
            ["name", "url", "events", "format"], _subscription_rows(list(reply.subscriptions))
        )
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    with metering_client(args) as metering:
        request = A.DeleteAlertSubscriptionRequest(name=args.name)
        reply = _call(metering, "DeleteAlertSubscription", request, args.timeout)
    print_json(reply) if args.json else print(f"deleted {reply.subscription.name}")
    return EXIT_OK


def _deliveries(args: argparse.Namespace) -> int:
    request = A.ListAlertDeliveriesRequest(
        tenant_id=args.tenant, subscription=args.subscription or "",
        state=STATES[args.state] if args.state else A.ALERT_DELIVERY_STATE_UNSPECIFIED,
        page_size=args.limit,
    )  # fmt: skip
    with metering_client(args) as metering:
        reply = _call(metering, "ListAlertDeliveries", request, args.timeout)
    if args.json:
        print_json(reply)
        return EXIT_OK
    rows = [
        [format_time(d.create_time), d.event_type, A.AlertDeliveryState.Name(d.state)[21:].lower(),
         str(d.attempts), str(d.last_status or ""), d.last_error, d.event_id]
        for d in reply.deliveries
    ]  # fmt: skip
    print_table(["created", "event", "state", "attempts", "status", "error", "event_id"], rows)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash alerts`."""
    conn = connection_parent()
    alerts = subparsers.add_parser("alerts", help="alert webhooks of a tenant")
    actions = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    subscribe = actions.add_parser("subscribe", parents=[conn], help="POST events to a URL")
    subscribe.add_argument("--tenant", required=True)
    subscribe.add_argument("--url", required=True)
    subscribe.add_argument(
        "--event",
        action="append",
        required=True,
        metavar="TYPE",
        help="an event type, e.g. key.spend_crossed (repeat for more)",
    )
    subscribe.add_argument("--format", choices=sorted(FORMATS), default="standard")
    subscribe.add_argument("--secret", help="a whsec_ secret to sign with (default: generated)")
    subscribe.add_argument("--request-id", help="makes a retried subscribe create one")
    subscribe.set_defaults(handler=guarded(_subscribe))
    listing = actions.add_parser("list", parents=[conn], help="a tenant's subscriptions")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(handler=guarded(_list))
    delete = actions.add_parser("delete", parents=[conn], help="delete a subscription")
    delete.add_argument("name", help="tenants/{tenant}/alertSubscriptions/{id}")
    delete.set_defaults(handler=guarded(_delete))
    deliveries = actions.add_parser("deliveries", parents=[conn], help="per event: state")
    deliveries.add_argument("--tenant", required=True)
    deliveries.add_argument("--subscription", metavar="NAME")
    deliveries.add_argument("--state", choices=sorted(STATES))
    deliveries.add_argument("--limit", type=int, default=100)
    deliveries.set_defaults(handler=guarded(_deliveries))
