"""`keyleash usage-hooks secret create|rotate`: a tenant's usage webhook signing secret (admin
token). The secret is printed once; Metering keeps it sealed and never lists it back."""

from __future__ import annotations

import argparse

from keyleash.metering.v1 import metering_pb2 as P
from keyleash_ops.cli_common import (
    EXIT_OK,
    connection_parent,
    format_time,
    guarded,
    metering_client,
    print_json,
    print_table,
)

Answer = P.CreateUsageWebhookSecretResponse | P.RotateUsageWebhookSecretResponse


def _show(args: argparse.Namespace, reply: Answer) -> int:
    if args.json:
        print_json(reply)
        return EXIT_OK
    secret = reply.secret
    print_table(
        ["name", "created", "rotated"],
        [[secret.name, format_time(secret.create_time), format_time(secret.rotate_time)]],
    )
    print(f"\nsigning secret (shown only now): {reply.signing_secret}")
    print(
        f"senders POST to <usage hooks URL>/v1/tenants/{secret.tenant_id}/usage-events,"
        " signed with it (Standard Webhooks)"
    )
    return EXIT_OK


def _create(args: argparse.Namespace) -> int:
    with metering_client(args) as metering:
        reply = metering.create_usage_webhook_secret(
            args.tenant, signing_secret=args.secret or "", timeout=args.timeout
        )
    return _show(args, reply)


def _rotate(args: argparse.Namespace) -> int:
    with metering_client(args) as metering:
        reply = metering.rotate_usage_webhook_secret(
            args.tenant, signing_secret=args.secret or "", timeout=args.timeout
        )
    return _show(args, reply)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash usage-hooks`."""
    conn = connection_parent()
    hooks = subparsers.add_parser("usage-hooks", help="signed usage webhooks of a tenant")
    things = hooks.add_subparsers(dest="thing", metavar="THING", required=True)
    secret = things.add_parser("secret", help="the tenant's signing secret")
    actions = secret.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, text in (
        ("create", _create, "create the tenant's secret (once; shown once)"),
        ("rotate", _rotate, "replace it; deliveries signed with the old one are refused"),
    ):
        action = actions.add_parser(name, parents=[conn], help=text)
        action.add_argument("--tenant", required=True)
        action.add_argument("--secret", help="a whsec_ secret to use (default: generated)")
        action.set_defaults(handler=guarded(handler))
