"""`keyleash keys mint|get|list|revoke|freeze|unfreeze|set-policy` (and, from cli_key_views,
`usage|history|whois`). Keys are named by id or by resource name."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from google.protobuf import field_mask_pb2

from keyleash.client import SyncVaultClient
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
    parse_duration,
    parse_duration_ms,
    parse_money,
    print_fields,
    print_json,
    print_table,
    to_json,
    vault_client,
)
from keyleash_ops.cli_key_views import register_actions
from keyleash_ops.cli_templates import resolve_template

_CAP_WINDOWS = {
    "day": V.SpendCap.WINDOW_CALENDAR_DAY,
    "month": V.SpendCap.WINDOW_CALENDAR_MONTH,
    "24h": V.SpendCap.WINDOW_ROLLING_24H,
    "lifetime": V.SpendCap.WINDOW_LIFETIME,
}
_WINDOW_NAMES = {value: name for name, value in _CAP_WINDOWS.items()}
_STATES = {
    "active": V.Key.STATE_ACTIVE,
    "frozen": V.Key.STATE_FROZEN,
    "revoked": V.Key.STATE_REVOKED,
    "expired": V.Key.STATE_EXPIRED,
}


# ---- policy flags ----------------------------------------------------------------------------


def parse_rate(text: str) -> V.RateLimit:
    """ "10/60s" -> 10 calls per sliding 60 seconds."""
    count, sep, window = text.partition("/")
    if not sep or not count.strip().isdigit() or int(count) < 1:
        raise UsageError(f"bad rate {text!r} (want e.g. 10/60s)")
    return V.RateLimit(limit=int(count), window=parse_duration(window))


def parse_cap(text: str) -> V.SpendCap:
    """ "5.00USD/day" (day, month, 24h or lifetime)."""
    amount, sep, window = text.rpartition("/")
    if not sep or window.strip().lower() not in _CAP_WINDOWS:
        raise UsageError(f"bad cap {text!r} (want e.g. 5.00USD/day; day|month|24h|lifetime)")
    return V.SpendCap(limit=parse_money(amount), window=_CAP_WINDOWS[window.strip().lower()])


def parse_constraint(text: str) -> V.AttributeConstraint:
    """ "customer_id=cus_1,cus_2"."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise UsageError(f"bad constraint {text!r} (want e.g. customer_id=cus_1,cus_2)")
    return V.AttributeConstraint(
        attribute=name.strip(), allowed_values=[v.strip() for v in values.split(",")]
    )


def _add_policy_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("policy")
    group.add_argument("--rate", action="append", metavar="N/WINDOW", help="e.g. 10/60s")
    group.add_argument("--cap", action="append", metavar="AMOUNT/WINDOW", help="e.g. 5.00USD/day")
    group.add_argument("--max-per-call", metavar="AMOUNT", help="most one call may cost")
    group.add_argument("--run-cap", metavar="AMOUNT", help="most one agent run may spend")
    group.add_argument("--endpoint", action="append", help='e.g. "POST /v1/charges"')
    group.add_argument("--vendor", action="append", help="e.g. stripe")
    group.add_argument("--constraint", action="append", metavar="ATTR=V1,V2")
    group.add_argument("--max-calls", type=int, metavar="N", help="lifetime calls (0: unlimited)")
    group.add_argument(
        "--approval-on-denial",
        choices=("on", "off"),
        help="a budget denial opens an approval request (keyleash approvals)",
    )


def build_policy(args: argparse.Namespace) -> tuple[V.Policy, list[str]]:
    """The policy of the flags given, and the names of the fields they set (an update mask)."""
    policy = V.Policy()
    fields: list[str] = []
    if args.rate:
        policy.rate_limits.extend(parse_rate(r) for r in args.rate)
        fields.append("rate_limits")
    if args.cap:
        policy.spend_caps.extend(parse_cap(c) for c in args.cap)
        fields.append("spend_caps")
    if args.max_per_call:
        policy.max_cost_per_call.CopyFrom(parse_money(args.max_per_call))
        fields.append("max_cost_per_call")
    if args.run_cap:
        policy.run_spend_cap.CopyFrom(parse_money(args.run_cap))
        fields.append("run_spend_cap")
    for flag, field in (("endpoint", "allowed_endpoints"), ("vendor", "allowed_vendors")):
        if getattr(args, flag):
            getattr(policy, field).extend(getattr(args, flag))
            fields.append(field)
    if args.constraint:
        policy.constraints.extend(parse_constraint(c) for c in args.constraint)
        fields.append("constraints")
    if args.max_calls is not None:
        if args.max_calls < 0:
            raise UsageError("--max-calls must be 0 (unlimited) or more")
        policy.max_calls = args.max_calls
        fields.append("max_calls")
    if args.approval_on_denial is not None:
        policy.approval_on_denial = args.approval_on_denial == "on"
        fields.append("approval_on_denial")
    return policy, fields


# ---- rendering -------------------------------------------------------------------------------


def describe_policy(policy: V.Policy) -> Iterator[tuple[str, str]]:
    for rate in policy.rate_limits:
        yield "rate", f"{rate.limit}/{rate.window.ToMilliseconds() / 1000:g}s"
    for cap in policy.spend_caps:
        yield "cap", f"{format_money(cap.limit)}/{_WINDOW_NAMES.get(cap.window, '?')}"
    if policy.HasField("max_cost_per_call"):
        yield "max per call", format_money(policy.max_cost_per_call)
    if policy.HasField("run_spend_cap"):
        yield "run cap", format_money(policy.run_spend_cap)
    if policy.allowed_endpoints:
        yield "endpoints", ", ".join(policy.allowed_endpoints)
    if policy.allowed_vendors:
        yield "vendors", ", ".join(policy.allowed_vendors)
    for constraint in policy.constraints:
        yield "constraint", f"{constraint.attribute} in {', '.join(constraint.allowed_values)}"
    if policy.max_calls:
        yield "max calls", str(policy.max_calls)
    if policy.approval_on_denial:
        yield "approvals", "a budget denial opens an approval request"


def state_name(state: int) -> str:
    return V.Key.State.Name(state).removeprefix("STATE_").lower()


def print_key(key: V.Key) -> None:
    print_fields(
        [
            ("name", key.name),
            ("state", state_name(key.state)),
            ("agent", key.agent_id),
            ("label", key.label or "-"),
            ("parent", key.parent_key_id or "-"),
            ("depth", str(key.depth)),
            ("scopes", ", ".join(key.scopes) or "-"),
            *describe_policy(key.policy),
            ("created", format_time(key.create_time, key.HasField("create_time"))),
            ("expires", format_time(key.expire_time, key.HasField("expire_time"))),
            ("revoked", format_time(key.revoke_time, key.HasField("revoke_time"))),
        ]
    )


def _show_key(args: argparse.Namespace, key: V.Key) -> int:
    if args.json:
        print_json(key)
    else:
        print_key(key)
    return EXIT_OK


# ---- handlers --------------------------------------------------------------------------------


def _mint(args: argparse.Namespace) -> int:
    policy, _ = build_policy(args)
    request = V.MintKeyRequest(
        tenant_id=args.tenant,
        agent_id=args.agent,
        label=args.label or "",
        scopes=args.scope or [],
        policy=policy,
        request_id=args.request_id or "",
    )
    if args.ttl:
        request.ttl.FromMilliseconds(parse_duration_ms(args.ttl))
    with vault_client(args) as vault:
        if args.template:
            request.template = resolve_template(vault, args.template, args.tenant)
        minted = vault.mint_key(request)
    if args.json:
        print_json(minted)
        return EXIT_OK
    print_key(minted.key)
    print(f"secret:  {minted.secret}   (shown only now)")
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        key = vault.get_key(key_name_of(args.name))
        frozen = _last_freeze(vault, key) if key.state == V.Key.STATE_FROZEN else None
    if args.json or frozen is None:
        return _show_key(args, key)
    print_key(key)
    print_fields([("frozen", f"{format_time(frozen.event_time)} by {frozen.actor}: "
                             f"{frozen.reason or '(no reason given)'}")])  # fmt: skip
    return EXIT_OK


def _last_freeze(vault: SyncVaultClient, key: V.Key) -> V.KeyEvent | None:
    """The freeze event that froze the key (its reason is kept in the key's history)."""
    freezes = [e for e in vault.iter_key_events(key.name) if e.action == "freeze"]
    return freezes[-1] if freezes else None


def _list(args: argparse.Namespace) -> int:
    parent_id = key_id_of(args.parent) if args.parent else ""
    request = V.ListKeysRequest(
        tenant_id=args.tenant,
        parent_key_id=parent_id,
        label_prefix=args.label_prefix or "",
        state=_STATES.get(args.state or "", V.Key.STATE_UNSPECIFIED),
        page_size=min(args.limit, 1000),
    )
    with vault_client(args) as vault:
        if parent_id:  # a parent that matches nothing is a mistake, not an empty list
            vault.get_key(f"tenants/{args.tenant}/keys/{parent_id}")
        keys = [key for _, key in zip(range(args.limit), vault.iter_keys(request), strict=False)]
    if args.json:
        print_json({"keys": [to_json(key) for key in keys]})
        return EXIT_OK
    rows = [
        [k.name, state_name(k.state), k.agent_id, k.label or "-", str(k.depth),
         format_time(k.expire_time, k.HasField("expire_time"))]
        for k in keys
    ]  # fmt: skip
    print_table(["NAME", "STATE", "AGENT", "LABEL", "DEPTH", "EXPIRES"], rows)
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        revoked = vault.revoke_key(name=key_name_of(args.name), reason=args.reason or "")
    if args.json:
        print_json(revoked)
    else:
        print(f"revoked {revoked.key.name} and {revoked.revoked_descendants} descendant(s)")
    return EXIT_OK


def _freeze(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        return _show_key(
            args, vault.freeze_key(name=key_name_of(args.name), reason=args.reason or "")
        )


def _unfreeze(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        return _show_key(args, vault.unfreeze_key(key_name_of(args.name)))


def _set_policy(args: argparse.Namespace) -> int:
    policy, fields = build_policy(args)
    if not fields:
        raise UsageError("set-policy needs at least one policy flag (see --help)")
    with vault_client(args) as vault:
        key = vault.update_key_policy(
            name=key_name_of(args.name),
            policy=policy,
            update_mask=field_mask_pb2.FieldMask(paths=fields),
            reason=args.reason or "",
        )
    return _show_key(args, key)


# ---- registration ----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash keys ...`."""
    conn = connection_parent()
    keys = subparsers.add_parser("keys", help="mint, inspect, freeze and revoke keys")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)

    mint = actions.add_parser("mint", parents=[conn], help="mint a root key (admin)")
    mint.add_argument("--tenant", required=True)
    mint.add_argument("--agent", required=True)
    mint.add_argument("--label")
    mint.add_argument("--scope", action="append", help="repeatable, e.g. stripe.charges.write")
    mint.add_argument("--ttl", help="e.g. 1h (default: the server's, 24h)")
    mint.add_argument("--request-id", help="idempotency key: the same id mints once")
    mint.add_argument(
        "--template", metavar="NAME", help="mint from a template (the flags may only narrow it)"
    )
    _add_policy_flags(mint)
    mint.set_defaults(handler=guarded(_mint))

    get = actions.add_parser("get", parents=[conn], help="show one key")
    get.add_argument("name", help="key id or tenants/{tenant}/keys/{key}")
    get.set_defaults(handler=guarded(_get))

    list_ = actions.add_parser("list", parents=[conn], help="list a tenant's keys")
    list_.add_argument("--tenant", required=True)
    list_.add_argument("--parent", help="only children of this key (id or name)")
    list_.add_argument("--label-prefix")
    list_.add_argument("--state", choices=sorted(_STATES))
    list_.add_argument("--limit", type=int, default=1000)
    list_.set_defaults(handler=guarded(_list))

    for name, handler, text in (
        ("revoke", _revoke, "revoke a key and its subtree, irreversibly"),
        ("freeze", _freeze, "freeze a key and its subtree until unfreeze"),
    ):
        action = actions.add_parser(name, parents=[conn], help=text)
        action.add_argument("name", help="key id or tenants/{tenant}/keys/{key}")
        action.add_argument("--reason")
        action.set_defaults(handler=guarded(handler))

    unfreeze = actions.add_parser("unfreeze", parents=[conn], help="lift a freeze")
    unfreeze.add_argument("name", help="key id or tenants/{tenant}/keys/{key}")
    unfreeze.set_defaults(handler=guarded(_unfreeze))

    set_policy = actions.add_parser(
        "set-policy", parents=[conn], help="replace the policy fields given (update mask)"
    )
    set_policy.add_argument("name", help="key id or tenants/{tenant}/keys/{key}")
    set_policy.add_argument("--reason")
    _add_policy_flags(set_policy)
    set_policy.set_defaults(handler=guarded(_set_policy))

    register_actions(actions, conn)
