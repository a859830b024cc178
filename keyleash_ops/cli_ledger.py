"""`keyleash spend`, `keyleash events list|export`, `keyleash tenant set-budget|get`,
`keyleash audit`: reading what was decided and spent, and setting a tenant's budget."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import grpc

from keyleash.client import SyncMeteringClient, SyncVaultClient
from keyleash.client.errors import deny_reason_name, from_rpc_error
from keyleash.client.run import call_metadata
from keyleash.metering.v1 import metering_pb2 as P
from keyleash.metering.v1 import metering_pb2_grpc
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_ops.cli_common import (
    EXIT_OK,
    UsageError,
    connection_parent,
    format_money,
    format_time,
    guarded,
    key_id_of,
    key_name_of,
    metering_client,
    parse_money,
    parse_time,
    print_fields,
    print_json,
    print_table,
    to_json,
    vault_client,
)

EVENT_COLUMNS = [
    "occur_time", "kind", "amount", "currency", "tenant_id", "key_id", "agent_id",
    "agent_run_id", "vendor", "endpoint", "model", "input_tokens", "output_tokens",
    "cached_input_tokens", "reason", "cost_source", "reservation_id", "request_id", "event_id",
    "trace_id", "converted",
]  # fmt: skip


def converted_text(event: P.BillingEvent) -> str:
    """The event's amount in its caps' other currencies, with the rate and FX table version:
    "1.080000 USD @1.08 (2026-12-01)", several joined by "; ", "" when none."""
    return "; ".join(
        f"{format_money(c.amount)} @{c.rate} ({c.fx_table_version})"
        for c in event.converted_amounts
    )


def _add_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help="ISO 8601 time (UTC default) or a duration ago, e.g. 1h")
    parser.add_argument("--until", help="ISO 8601 time or a duration ago")


def _range(args: argparse.Namespace, target: Any) -> None:
    if args.since:
        target.start_time.CopyFrom(parse_time(args.since))
    if args.until:
        target.end_time.CopyFrom(parse_time(args.until))
    if (
        args.since
        and args.until
        and target.end_time.ToNanoseconds() <= (target.start_time.ToNanoseconds())
    ):
        raise UsageError(f"--until {args.until} is not after --since {args.since}")


def _cut(items: Iterable[Any], limit: int) -> tuple[list[Any], bool]:
    """The first `limit` items, and whether more matched (then the list was cut)."""
    taken = list(_take(items, limit + 1))
    return taken[:limit], len(taken) > limit


def _say_cut(shown: int, what: str, args: argparse.Namespace) -> None:
    order = "oldest" if args.oldest_first else "newest"
    print(f"keyleash: showing the {order} {shown} {what} ({order} first); more match: raise "
          "--limit or narrow --since/--until", file=sys.stderr, flush=True)  # fmt: skip


def _add_order(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--oldest-first", action="store_true", help="oldest first (default: newest first)"
    )


# ---- spend -----------------------------------------------------------------------------------


def _spend_request(args: argparse.Namespace) -> P.GetSpendRequest:
    """--tenant alone is the tenant's spend; with --agent or --run, the tenant they are read in
    (agent and run ids are only unique within a tenant)."""
    request = P.GetSpendRequest()
    if args.key:
        if args.tenant:
            raise UsageError("--key names its tenant already; leave out --tenant")
        request.key_name = args.key
        if "/" not in args.key:  # a bare key id: the vault knows its tenant
            with vault_client(args) as vault:
                request.key_name = vault.get_key(key_name_of(args.key)).name
    elif args.agent:
        request.agent_id, request.subject_tenant_id = args.agent, args.tenant or ""
    elif args.run:
        request.agent_run_id, request.subject_tenant_id = args.run, args.tenant or ""
    elif args.tenant:
        request.tenant_id = args.tenant
    else:
        raise UsageError("spend needs --tenant T, --key NAME, --agent A or --run R")
    return request


def _spend(args: argparse.Namespace) -> int:
    request = _spend_request(args)
    _range(args, request)
    with metering_client(args) as metering:
        spend = metering.get_spend(request)
    if args.json:
        print_json(spend)
        return EXIT_OK
    subject = request.WhichOneof("subject") or ""
    print(f"{subject.removesuffix('_id').replace('_', ' ')} {getattr(request, subject)}: "
          f"{spend.event_count} event(s)")  # fmt: skip
    print_table(["CURRENCY", "TOTAL"], [[m.currency_code, format_money(m)] for m in spend.totals])
    return EXIT_OK


# ---- events ----------------------------------------------------------------------------------


def _filter(args: argparse.Namespace) -> P.BillingEventFilter:
    event_filter = P.BillingEventFilter(
        tenant_id=args.tenant,
        key_id=key_id_of(args.key) if args.key else "",
        agent_run_id=args.run or "",
    )
    _range(args, event_filter)
    return event_filter


def event_row(event: P.BillingEvent) -> dict[str, str]:
    """A billing event as flat strings (the CSV row; amount in units, e.g. "1.500000")."""
    amount = format_money(event.amount).split(" ")[0] if event.HasField("amount") else ""
    row = {name: str(getattr(event, name)) for name in EVENT_COLUMNS if hasattr(event, name)}
    row.update(
        occur_time=event.occur_time.ToJsonString() if event.HasField("occur_time") else "",
        kind=P.BillingEvent.Kind.Name(event.kind).removeprefix("KIND_").lower(),
        amount=amount,
        currency=event.amount.currency_code,
        converted=converted_text(event),
    )
    return row


def _write(events: Iterable[P.BillingEvent], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=EVENT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for event in events:
            writer.writerow(event_row(event))
    else:
        for event in events:
            print(json.dumps(to_json(event), sort_keys=True))


def _print_events(events: list[P.BillingEvent]) -> None:
    rows = [
        [format_time(e.occur_time), event_row(e)["kind"], format_money(e.amount), e.key_id,
         e.agent_run_id or "-", e.model or e.vendor or "-", e.endpoint or "-",
         converted_text(e) or "-"]
        for e in events
    ]  # fmt: skip
    headers = ["TIME", "KIND", "AMOUNT", "KEY", "RUN", "VENDOR/MODEL", "ENDPOINT", "CONVERTED"]
    print_table(headers, rows)


def _events_list(args: argparse.Namespace) -> int:
    request = P.ListBillingEventsRequest(
        filter=_filter(args),
        page_size=min(args.limit + 1, 1000),
        order_by="occur_time" if args.oldest_first else "occur_time desc",
    )
    with metering_client(args) as metering:
        events, cut = _cut(metering.iter_billing_events(request), args.limit)
    if cut:
        _say_cut(len(events), "events", args)
    if args.json:
        print_json({"events": [to_json(e) for e in events], "truncated": cut})
    elif args.format:
        _write(events, args.format)
    else:
        _print_events(events)
    return EXIT_OK


def export_events(
    metering: SyncMeteringClient, event_filter: P.BillingEventFilter
) -> Iterator[P.BillingEvent]:
    """ExportBillingEvents on the client's channel, without a deadline (a long export must not
    be cut off, and the client's default timeout would)."""
    stub_type: Any = metering_pb2_grpc.MeteringServiceStub  # generated without annotations
    call = stub_type(metering.channel).ExportBillingEvents(
        P.ExportBillingEventsRequest(filter=event_filter), metadata=call_metadata(metering.token)
    )
    try:
        yield from call
    except grpc.RpcError as failure:
        raise from_rpc_error(failure) from failure
    finally:
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()


def _events_export(args: argparse.Namespace) -> int:
    with metering_client(args) as metering:
        _write(export_events(metering, _filter(args)), args.format)
    return EXIT_OK


def _take(items: Iterable[Any], limit: int) -> Iterator[Any]:
    for count, item in enumerate(items):
        if count >= limit:
            return
        yield item


# ---- tenant ----------------------------------------------------------------------------------


def print_tenant(tenant: P.Tenant) -> None:
    print_fields(
        [
            ("tenant", tenant.tenant_id),
            ("daily threshold", format_money(tenant.daily_threshold)),
            ("spend today", format_money(tenant.spend_today)),
            ("throttled", "yes" if tenant.throttled else "no"),
            ("throttled until", format_time(tenant.throttled_until, tenant.throttled)),
        ]
    )


def _tenant_get(args: argparse.Namespace) -> int:
    with metering_client(args) as metering:
        tenant = metering.get_tenant(args.tenant)
    print_json(tenant) if args.json else print_tenant(tenant)
    return EXIT_OK


def _tenant_set_budget(args: argparse.Namespace) -> int:
    if args.daily is None and not args.lift:
        raise UsageError("set-budget needs --daily AMOUNT (0 removes it) and/or --lift")
    with metering_client(args) as metering:
        if args.daily is None:  # keep the threshold: an unset one would remove it
            threshold = metering.get_tenant(args.tenant).daily_threshold
        elif args.daily.strip().lower() in ("0", "none"):
            threshold = None
        else:
            threshold = parse_money(args.daily)
        request = P.SetTenantBudgetRequest(tenant_id=args.tenant, lift_throttle=args.lift)
        if threshold is not None and threshold.currency_code:
            request.daily_threshold.CopyFrom(threshold)
        tenant = metering.set_tenant_budget(request)
    print_json(tenant) if args.json else print_tenant(tenant)
    return EXIT_OK


# ---- audit -----------------------------------------------------------------------------------


def iter_authorizations(
    vault: SyncVaultClient, request: V.ListAuthorizationsRequest, timeout: float | None
) -> Iterator[V.Authorization]:
    """Every recorded decision matching `request`, page after page."""
    return vault.iter_authorizations(request, timeout=timeout)


DENY_REASONS = [
    name.removeprefix("DENY_REASON_")
    for name in V.DenyReason.keys()
    if not name.endswith("UNSPECIFIED")
]


def audit_request(args: argparse.Namespace) -> V.ListAuthorizationsRequest:
    request = V.ListAuthorizationsRequest(
        tenant_id=args.tenant,
        key_name=key_name_of(args.key) if args.key else "",
        agent_run_id=args.run or "",
        page_size=min(args.limit + 1, 1000),
        order_by="decision_time" if args.oldest_first else "decision_time desc",
    )
    if args.decision:
        request.decision = V.DECISION_ALLOW if args.decision == "allow" else V.DECISION_DENY
    if args.reason:
        name = "DENY_REASON_" + args.reason.upper().removeprefix("DENY_REASON_")
        if name not in V.DenyReason.keys() or name == "DENY_REASON_UNSPECIFIED":
            raise UsageError(
                f"unknown deny reason {args.reason!r} (one of {', '.join(DENY_REASONS)})"
            )
        reason: Any = V.DenyReason.Value(name)
        request.reason = reason
    _range(args, request)
    return request


def authorization_row(a: V.Authorization) -> list[str]:
    decision = "allow" if a.decision == V.DECISION_ALLOW else "deny"
    reason = deny_reason_name(a.reason) if a.reason else "-"
    call = f"{a.method} {a.path}".strip() or a.scope or "-"
    settled = format_money(a.settled_cost) if a.settled_events else "-"
    return [format_time(a.decision_time), decision, reason, a.key_id, a.agent_run_id or "-",
            call, format_money(a.estimated_cost), settled]  # fmt: skip


AUDIT_HEADERS = ["TIME", "DECISION", "REASON", "KEY", "RUN", "CALL", "ESTIMATED", "SETTLED"]


def _audit(args: argparse.Namespace) -> int:
    request = audit_request(args)
    with vault_client(args) as vault:
        rows, cut = _cut(iter_authorizations(vault, request, args.timeout), args.limit)
    if cut:
        _say_cut(len(rows), "decisions", args)
    if args.json:
        print_json({"authorizations": [to_json(a) for a in rows], "truncated": cut})
    else:
        print_table(AUDIT_HEADERS, [authorization_row(a) for a in rows])
    return EXIT_OK


# ---- registration ----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash spend`, `events`, `tenant` and `audit`."""
    conn = connection_parent()

    spend = subparsers.add_parser("spend", parents=[conn], help="totals spent (GetSpend)")
    spend.add_argument(
        "--tenant", help="the tenant's spend; with --agent or --run, the tenant they belong to"
    )
    who = spend.add_mutually_exclusive_group()
    who.add_argument("--key", metavar="NAME", help="a key and its descendants")
    who.add_argument("--agent")
    who.add_argument("--run", help="one agent run")
    _add_range(spend)
    spend.set_defaults(handler=guarded(_spend))

    events = subparsers.add_parser("events", help="billing events (list, or export a stream)")
    actions = events.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, default in (
        ("list", _events_list, None),
        ("export", _events_export, "jsonl"),
    ):
        action = actions.add_parser(name, parents=[conn], help=f"{name} billing events")
        action.add_argument("--tenant", required=True)
        action.add_argument("--key", help="key name or id")
        action.add_argument("--run")
        action.add_argument("--format", choices=["csv", "jsonl"], default=default)
        action.add_argument(
            "--limit", type=int, default=1000, help="at most this many (a cut list says so)"
        )
        _add_range(action)
        if name == "list":
            _add_order(action)
        action.set_defaults(handler=guarded(handler))

    tenant = subparsers.add_parser("tenant", help="a tenant's daily budget and throttle")
    tenant_actions = tenant.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = tenant_actions.add_parser("get", parents=[conn], help="threshold, spend, throttle")
    get.add_argument("--tenant", required=True)
    get.set_defaults(handler=guarded(_tenant_get))
    budget = tenant_actions.add_parser("set-budget", parents=[conn], help="set or lift")
    budget.add_argument("--tenant", required=True)
    budget.add_argument("--daily", metavar="AMOUNT", help="daily threshold, e.g. 50.00USD")
    budget.add_argument("--lift", action="store_true", help="lift the current throttle now")
    budget.set_defaults(handler=guarded(_tenant_set_budget))

    audit = subparsers.add_parser("audit", parents=[conn], help="recorded decisions")
    audit.add_argument("--tenant", required=True)
    audit.add_argument("--key", metavar="NAME", help="a key and its descendants")
    audit.add_argument("--run")
    audit.add_argument("--decision", choices=["allow", "deny"])
    audit.add_argument("--reason", metavar="REASON", help=f"deny reason: {', '.join(DENY_REASONS)}")
    audit.add_argument(
        "--limit", type=int, default=1000, help="at most this many (a cut list says so)"
    )
    _add_range(audit)
    _add_order(audit)
    audit.set_defaults(handler=guarded(_audit))
