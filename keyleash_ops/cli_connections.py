"""`keyleash connections add|list|rotate|delete`: the vendor secrets the gateway forwards with.

The secret is read from stdin (typed without echo on a terminal, or piped:
`printf %s "$STRIPE_KEY" | keyleash connections add ...`), never from a flag, so it does not end
up in shell history or in `ps`; it is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from keyleash.client import ConnectionsClient
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_ops.cli_common import (
    EXIT_OK,
    UsageError,
    client_kwargs,
    connection_parent,
    format_time,
    guarded,
    print_fields,
    print_json,
    print_table,
    to_json,
    vault_target,
)

T = TypeVar("T")


def _call(args: argparse.Namespace, action: Callable[[ConnectionsClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with ConnectionsClient(vault_target(args), **client_kwargs(args)) as client:
            return await action(client)

    return asyncio.run(run())


def read_secret(prompt: str = "vendor secret (not echoed): ") -> str:
    """One line from stdin; without echo when stdin is a terminal."""
    if sys.stdin.isatty():
        secret = getpass.getpass(prompt)
    else:
        secret = sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        raise UsageError("no secret on stdin (pipe it in, or type it at the prompt)")
    return secret


def _show(args: argparse.Namespace, connection: V.Connection) -> int:
    if args.json:
        print_json(connection)
        return EXIT_OK
    print_fields(
        [
            ("name", connection.name),
            ("vendor", connection.vendor),
            ("base_url", connection.base_url or "(the vendor's public API)"),
            ("created", format_time(connection.create_time)),
            ("rotated", format_time(connection.rotate_time, connection.HasField("rotate_time"))),
        ]
    )
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    request = V.CreateConnectionRequest(
        tenant_id=args.tenant,
        connection=V.Connection(
            vendor=args.vendor, connection_id=args.id or "", base_url=args.base_url or ""
        ),
        secret=read_secret(),
        request_id=args.request_id or "",
    )
    return _show(args, _call(args, lambda c: c.create_connection(request)))


def _list(args: argparse.Namespace) -> int:
    async def collect(client: ConnectionsClient) -> list[V.Connection]:
        return [c async for c in client.iter_connections(args.tenant)]

    connections = _call(args, collect)
    if args.json:
        print_json({"connections": [to_json(c) for c in connections]})
        return EXIT_OK
    rows = [(c.name, c.vendor, c.base_url or "-", format_time(c.create_time)) for c in connections]
    print_table(["NAME", "VENDOR", "BASE URL", "CREATED"], rows)
    return EXIT_OK


def _rotate(args: argparse.Namespace) -> int:
    secret = read_secret("new vendor secret (not echoed): ")
    return _show(args, _call(args, lambda c: c.rotate_connection_secret(args.name, secret)))


def _delete(args: argparse.Namespace) -> int:
    deleted = _call(args, lambda c: c.delete_connection(args.name))
    if args.json:
        print_json(deleted)
    else:
        print(f"deleted {deleted.connection.name}; its secret is erased")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash connections ...`."""
    conn = connection_parent()
    connections = subparsers.add_parser(
        "connections", help="store, rotate and delete the vendor secrets the gateway uses"
    )
    actions = connections.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", parents=[conn], help="store a vendor secret (read from stdin)")
    add.add_argument("--tenant", required=True)
    add.add_argument("--vendor", required=True, help="stripe, twilio, resend, ...")
    add.add_argument("--id", help="connection id (default: assigned)")
    add.add_argument("--base-url", help="upstream base URL (default: the vendor's public API)")
    add.add_argument("--request-id", help="idempotency key: the same id creates once")
    add.set_defaults(handler=guarded(_add))
    list_ = actions.add_parser("list", parents=[conn], help="list a tenant's connections")
    list_.add_argument("--tenant", required=True)
    list_.set_defaults(handler=guarded(_list))
    rotate = actions.add_parser("rotate", parents=[conn], help="replace a secret (from stdin)")
    rotate.add_argument("name", help="tenants/{tenant}/connections/{id}")
    rotate.set_defaults(handler=guarded(_rotate))
    delete = actions.add_parser("delete", parents=[conn], help="delete and erase its secret")
    delete.add_argument("name", help="tenants/{tenant}/connections/{id}")
    delete.set_defaults(handler=guarded(_delete))
