"""What the operations subcommands share: connection flags, parsing, output and exit codes.

Exit codes scripts can trust (EXIT_*): 0 ok; 1 a denial or "not found"-style answer; 2 usage or
invalid argument; 3 unauthenticated or not permitted; 4 the service is unavailable. Errors are
one line on stderr: `keyleash: PERMISSION_DENIED: ... (reason EXCEEDS_PARENT, field ...)`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.protobuf.message import Message

from keyleash.client import NO_RETRY, KeyleashError, SyncMeteringClient, SyncVaultClient
from keyleash.client.config import METERING_TARGET_ENV, TOKEN_ENV, VAULT_TARGET_ENV
from keyleash.type.v1 import money_pb2
from keyleash_core.money import Money

PROG = "keyleash"
EXIT_OK, EXIT_ANSWER, EXIT_USAGE, EXIT_AUTH, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4
DEFAULT_VAULT = "localhost:50051"
DEFAULT_METERING = "localhost:50052"

_EXIT_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_USAGE,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_AUTH,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_AUTH,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNAVAILABLE,
}
_MONEY = re.compile(r"^\s*(-?)(\d+)(?:\.(\d*))?\s*([A-Za-z]{3})\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class UsageError(Exception):
    """A flag value the CLI cannot use (exit 2)."""


# ---- parsing ---------------------------------------------------------------------------------


def parse_money(text: str) -> money_pb2.Money:
    """ "5.00USD", "5 usd", "-0.25 EUR" -> Money in integer micros (no floats involved)."""
    match = _MONEY.match(text)
    if match is None:
        raise UsageError(f"bad amount {text!r} (want e.g. 5.00USD or '1.5 USD')")
    sign, whole, frac, currency = match.groups()
    frac = frac or ""
    if len(frac) > 6:
        raise UsageError(f"bad amount {text!r}: at most 6 decimal places (micros)")
    micros = int(whole) * 1_000_000 + int(frac.ljust(6, "0"))
    return money_pb2.Money(currency_code=currency.upper(), micros=-micros if sign else micros)


def format_money(money: money_pb2.Money | None) -> str:
    """ "1.500000 USD" ("-" for an unset amount)."""
    if money is None or not money.currency_code:
        return "-"
    return str(Money(money.currency_code, money.micros))


def parse_duration_ms(text: str) -> int:
    """ "60s", "5m", "1h", "2d", "500ms" -> milliseconds (at least 1)."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise UsageError(f"bad duration {text!r} (want e.g. 60s, 5m, 1h, 2d)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_duration(text: str) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMilliseconds(parse_duration_ms(text))
    return duration


def parse_time(text: str) -> timestamp_pb2.Timestamp:
    """An ISO 8601 time ("2026-11-28", "2026-11-28T10:00:00Z"; UTC when no zone is given) or a
    duration ago ("1h", "30m", "7d")."""
    stamp = timestamp_pb2.Timestamp()
    if _DURATION.match(text):
        ago = datetime.timedelta(milliseconds=parse_duration_ms(text))
        stamp.FromDatetime(datetime.datetime.now(datetime.UTC) - ago)
        return stamp
    try:
        when = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad time {text!r} (want ISO 8601, e.g. 2026-11-28T10:00:00Z, or 1h)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    stamp.FromDatetime(when.astimezone(datetime.UTC))
    return stamp


def format_time(stamp: timestamp_pb2.Timestamp, present: bool = True) -> str:
    if not present or (stamp.seconds == 0 and stamp.nanos == 0):
        return "-"
    return stamp.ToDatetime(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def key_id_of(name_or_id: str) -> str:
    """The key id of "tenants/{t}/keys/{k}" (or the argument itself when it is an id)."""
    return name_or_id.rsplit("/", 1)[-1]


# ---- connection ------------------------------------------------------------------------------


def connection_parent() -> argparse.ArgumentParser:
    """The flags every operations subcommand takes (an argparse parent parser)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--vault",
        metavar="HOST:PORT",
        default=None,
        help=f"Vault address (default: ${VAULT_TARGET_ENV} or {DEFAULT_VAULT})",
    )
    group.add_argument(
        "--metering",
        metavar="HOST:PORT",
        default=None,
        help=f"Metering address (default: ${METERING_TARGET_ENV} or {DEFAULT_METERING})",
    )
    group.add_argument("--token", default=None, help=f"admin token (default: ${TOKEN_ENV})")
    group.add_argument("--tls", action="store_true", help="use TLS (system roots unless --ca)")
    group.add_argument("--ca", metavar="FILE", default=None, help="PEM CA bundle (implies --tls)")
    group.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per-call deadline"
    )
    parent.add_argument("--json", action="store_true", help="print one JSON document")
    return parent


def client_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV, "")
    kwargs: dict[str, Any] = {"token": token, "timeout": args.timeout, "retry": NO_RETRY}
    if args.ca:
        try:
            with open(args.ca, "rb") as handle:
                kwargs["root_certificates"] = handle.read()
        except OSError as error:
            raise UsageError(f"cannot read --ca {args.ca}: {error.strerror or error}") from None
        kwargs["tls"] = True
    elif args.tls:
        kwargs["tls"] = True
    return kwargs


def vault_target(args: argparse.Namespace) -> str:
    return str(args.vault or os.environ.get(VAULT_TARGET_ENV) or DEFAULT_VAULT)


def metering_target(args: argparse.Namespace) -> str:
    return str(args.metering or os.environ.get(METERING_TARGET_ENV) or DEFAULT_METERING)


def vault_client(args: argparse.Namespace) -> SyncVaultClient:
    return SyncVaultClient(vault_target(args), **client_kwargs(args))


def metering_client(args: argparse.Namespace) -> SyncMeteringClient:
    return SyncMeteringClient(metering_target(args), **client_kwargs(args))


# ---- output ----------------------------------------------------------------------------------


def to_json(message: Message) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def print_json(document: Any) -> None:
    if isinstance(document, Message):
        document = to_json(document)
    print(json.dumps(document, indent=2, sort_keys=True))


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> None:
    """Left-aligned columns, two spaces apart, one header line."""
    body = [list(map(str, row)) for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for row in [list(headers), *body]:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        print(indent + line.rstrip())


def print_fields(pairs: Iterable[tuple[str, str]]) -> None:
    """One "name: value" line per pair, names aligned."""
    pairs = list(pairs)
    width = max((len(name) for name, _ in pairs), default=0)
    for name, value in pairs:
        print(f"{(name + ':').ljust(width + 1)} {value}")


# ---- errors and exit codes -------------------------------------------------------------------


def error_line(error: KeyleashError) -> str:
    """`PERMISSION_DENIED: message (reason EXCEEDS_PARENT, field policy.spend_caps[0])`."""
    code = error.code.name if error.code is not None else "DENIED"
    details = []
    if error.reason:
        details.append(f"reason {error.reason}")
    field = error.metadata.get("field") or next((v.field for v in error.field_violations), "")
    if field:
        details.append(f"field {field}")
    if error.retry_after is not None:
        details.append(f"retry after {error.retry_after:.1f}s")
    message = " ".join(error.message.split()) or code
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{code}: {message}{suffix}"


def exit_code(error: KeyleashError) -> int:
    if error.code is None:
        return EXIT_ANSWER
    return _EXIT_BY_CODE.get(error.code, EXIT_ANSWER)


def fail(message: str, code: int) -> int:
    print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Runs a handler, turning every expected failure into one stderr line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except UsageError as error:
            return fail(str(error), EXIT_USAGE)
        except KeyleashError as error:
            return fail(error_line(error), exit_code(error))
        except ValueError as error:  # e.g. bad TLS material
            return fail(str(error), EXIT_USAGE)
        except BrokenPipeError:  # `keyleash ... | head`
            return EXIT_OK

    return run
