"""`keyleash keys usage|history|whois`: what a key has left, what happened to it, and which key a
secret is (read-only views; registered under `keyleash keys` by cli_keys)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from google.protobuf import timestamp_pb2

from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_core.money import Money
from keyleash_ops.cli_common import (
    EXIT_OK,
    format_duration,
    format_money,
    format_time,
    guarded,
    key_name_of,
    print_fields,
    print_json,
    print_table,
    to_json,
    vault_client,
)


def _amount(unit: str, micros: int) -> str:
    """A quota figure: a count of requests, or micros of a currency as money."""
    if unit == "requests":
        return str(micros)
    return str(Money(unit, micros))


def _resets(stamp: timestamp_pb2.Timestamp, present: bool, now: datetime.datetime) -> str:
    if not present:
        return "-"
    left = (stamp.ToDatetime(datetime.UTC) - now).total_seconds()
    return f"{format_time(stamp)} (in {format_duration(left)})"


def print_usage(usage: V.GetKeyUsageResponse) -> None:
    now = usage.read_time.ToDatetime(datetime.UTC)
    print(f"usage at {format_time(usage.read_time)} (nothing consumed)")
    for key in usage.keys:
        state = V.Key.State.Name(key.state).removeprefix("STATE_").lower()
        print(f"\n{key.name}  [{state}]")
        rows = [
            [q.quota, _amount(q.unit, q.used), _amount(q.unit, q.limit),
             _amount(q.unit, q.remaining), _resets(q.reset_time, q.HasField("reset_time"), now)]
            for q in key.quotas
        ]  # fmt: skip
        if rows:
            print_table(["QUOTA", "USED", "LIMIT", "LEFT", "FREES/RESETS"], rows, indent="  ")
        else:
            print("  no limits")
        total: dict[str, int] = {}
        for hold in key.open_holds:
            total[hold.amount.currency_code] = total.get(hold.amount.currency_code, 0) + (
                hold.amount.micros
            )
        held = ", ".join(
            format_money(money_pb2.Money(currency_code=c, micros=m)) for c, m in total.items()
        )
        print(f"  open holds: {len(key.open_holds)}" + (f" ({held})" if held else ""))
        for hold in key.open_holds:
            amount, run = format_money(hold.amount), hold.agent_run_id or "-"
            since = format_time(hold.create_time)
            print(f"    {hold.reservation_id}  {amount}  run {run}  since {since}")


def _usage(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        usage = vault.get_key_usage(key_name_of(args.name), agent_run_id=args.run or "")
    print_json(usage) if args.json else print_usage(usage)
    return EXIT_OK


def _details(event: V.KeyEvent) -> str:
    try:
        details = json.loads(event.details_json or "{}")
    except ValueError:
        return event.details_json
    if not isinstance(details, dict):
        return event.details_json
    details = {name: value for name, value in details.items() if value not in ("", None)}
    return json.dumps(details, sort_keys=True, separators=(",", ":")) if details else "-"


def _history(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        events = list(vault.iter_key_events(key_name_of(args.name)))
    if args.json:
        print_json({"events": [to_json(e) for e in events]})
        return EXIT_OK
    rows = [
        [format_time(e.event_time), e.action, e.actor, e.reason or "-", _details(e)] for e in events
    ]
    print_table(["TIME", "ACTION", "BY", "REASON", "DETAILS"], rows)
    return EXIT_OK


def _whois(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        secret = sys.stdin.readline() if args.secret == "-" else args.secret
        answer = vault.validate_key(secret.strip())
    if args.json:
        print_json(answer)
        return EXIT_OK
    if not answer.HasField("key"):
        print("no key: the secret is malformed or names no key")
        return EXIT_OK
    key = answer.key
    state = V.Key.State.Name(key.state).removeprefix("STATE_").lower()
    reason = V.DenyReason.Name(answer.reason).removeprefix("DENY_REASON_")
    print_fields(
        [
            ("key", key.name),
            ("key id", key.key_id),
            ("tenant", key.tenant_id),
            ("agent", key.agent_id),
            ("state", state),
            ("usable", "yes" if answer.valid else f"no ({reason})"),
            ("parent", key.parent_key_id or "-"),
            ("expires", format_time(key.expire_time, key.HasField("expire_time"))),
        ]
    )
    return EXIT_OK


def register_actions(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], conn: argparse.ArgumentParser
) -> None:
    """Adds `keys usage`, `keys history` and `keys whois`."""
    usage = actions.add_parser(
        "usage", parents=[conn], help="what a key and its ancestors have left (consumes nothing)"
    )
    usage.add_argument("name", help="key id or tenants/{tenant}/keys/{key}")
    usage.add_argument("--run", help="also show the run cap of this agent run")
    usage.set_defaults(handler=guarded(_usage))

    history = actions.add_parser(
        "history", parents=[conn], help="who minted, froze, changed or revoked a key, and why"
    )
    history.add_argument("name", help="key id or tenants/{tenant}/keys/{key}")
    history.set_defaults(handler=guarded(_history))

    whois = actions.add_parser(
        "whois", parents=[conn], help="which key a secret is (e.g. a leaked one); never echoed"
    )
    whois.add_argument("secret", help="the secret, vk_... ('-': read it from stdin)")
    whois.set_defaults(handler=guarded(_whois))
