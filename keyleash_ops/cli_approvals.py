"""`keyleash approvals list|get|approve|deny|request`: approval requests to raise a spend cap
for the rest of its window (admin token, or a key secret as --token for its own subtree)."""

from __future__ import annotations

import argparse

from keyleash.vault.v1 import vault_pb2 as V
from keyleash_ops.cli_common import (
    EXIT_OK,
    connection_parent,
    format_money,
    format_time,
    guarded,
    key_name_of,
    parse_money,
    print_fields,
    print_json,
    print_table,
    to_json,
    vault_client,
)

STATES = {
    "pending": V.Approval.STATE_PENDING,
    "approved": V.Approval.STATE_APPROVED,
    "denied": V.Approval.STATE_DENIED,
    "expired": V.Approval.STATE_EXPIRED,
}


def _state(approval: V.Approval) -> str:
    return V.Approval.State.Name(approval.state).removeprefix("STATE_").lower()


def _show(approval: V.Approval, as_json: bool) -> None:
    if as_json:
        print_json(approval)
        return
    granted = format_money(approval.granted) if approval.HasField("granted") else ""
    print_fields(
        [
            ("name", approval.name),
            ("state", _state(approval)),
            ("key", approval.key),
            ("capped key", approval.capped_key),
            ("quota", f"{approval.quota} ({approval.window_id})"),
            ("asked", format_money(approval.amount)),
            ("granted", granted),
            ("reason", approval.reason),
            ("requested by", approval.requested_by),
            ("created", format_time(approval.create_time)),
            ("expires", format_time(approval.expire_time)),
            ("decided", format_time(approval.decide_time, approval.HasField("decide_time"))),
            ("decided by", approval.decided_by),
            ("decision reason", approval.decision_reason),
            (
                "grant ends",
                format_time(approval.grant_end_time, approval.HasField("grant_end_time")),
            ),
        ]
    )


def _list(args: argparse.Namespace) -> int:
    request = V.ListApprovalsRequest(
        tenant_id=args.tenant or "",
        state=STATES[args.state] if args.state else V.Approval.STATE_UNSPECIFIED,
        page_size=min(args.limit, 1000),
    )
    with vault_client(args) as vault:
        found = []
        for approval in vault.iter_approvals(request):
            found.append(approval)
            if len(found) >= args.limit:
                break
    if args.json:
        print_json({"approvals": [to_json(a) for a in found]})
        return EXIT_OK
    rows = [
        [a.name.rpartition("/")[2], _state(a), a.key.rpartition("/")[2], a.quota,
         format_money(a.amount), format_time(a.create_time), a.reason]
        for a in found
    ]  # fmt: skip
    print_table(["approval", "state", "key", "quota", "asked", "created", "reason"], rows)
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        _show(vault.get_approval(args.name), args.json)
    return EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    request = V.ApproveApprovalRequest(name=args.name, reason=args.reason or "")
    if args.amount:
        request.amount.CopyFrom(parse_money(args.amount))
    with vault_client(args) as vault:
        _show(vault.approve_approval(request), args.json)
    return EXIT_OK


def _deny(args: argparse.Namespace) -> int:
    request = V.DenyApprovalRequest(name=args.name, reason=args.reason or "")
    with vault_client(args) as vault:
        _show(vault.deny_approval(request), args.json)
    return EXIT_OK


def _request(args: argparse.Namespace) -> int:
    request = V.CreateApprovalRequest(
        key=key_name_of(args.key) if args.key else "",
        capped_key=key_name_of(args.capped_key) if args.capped_key else "",
        quota=args.quota,
        amount=parse_money(args.amount),
        reason=args.reason or "",
        agent_run_id=args.run or "",
    )
    with vault_client(args) as vault:
        _show(vault.create_approval(request), args.json)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash approvals`."""
    conn = connection_parent()
    approvals = subparsers.add_parser("approvals", help="requests to raise a spend cap")
    actions = approvals.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[conn], help="a tenant's requests, newest first")
    listing.add_argument("--tenant", help="required with an admin token")
    listing.add_argument("--state", choices=sorted(STATES))
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(handler=guarded(_list))
    get = actions.add_parser("get", parents=[conn], help="one request")
    get.add_argument("name", help="tenants/{tenant}/approvals/{id}")
    get.set_defaults(handler=guarded(_get))
    approve = actions.add_parser("approve", parents=[conn], help="raise the cap for the window")
    approve.add_argument("name", help="tenants/{tenant}/approvals/{id}")
    approve.add_argument("--amount", help="how much more, e.g. 5USD (default: as asked)")
    approve.add_argument("--reason")
    approve.set_defaults(handler=guarded(_approve))
    deny = actions.add_parser("deny", parents=[conn], help="refuse the request")
    deny.add_argument("name", help="tenants/{tenant}/approvals/{id}")
    deny.add_argument("--reason")
    deny.set_defaults(handler=guarded(_deny))
    request = actions.add_parser("request", parents=[conn], help="ask for more (for a key)")
    request.add_argument("--key", help="key name or id (default: the --token key's own)")
    request.add_argument("--quota", required=True, help="spend/calendar_day, …, or run")
    request.add_argument("--amount", required=True, help="how much more, e.g. 5USD")
    request.add_argument("--reason")
    request.add_argument("--run", help="the agent run (quota run)")
    request.add_argument("--capped-key", help="an ancestor whose cap stops the key")
    request.set_defaults(handler=guarded(_request))
