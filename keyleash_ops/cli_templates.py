"""`keyleash templates list|get|create|delete` and `keyleash agents provision`: policy templates
(the shipped starters and a tenant's own) and an agent provisioned with one vendor-locked key per
vendor of a template, in one call."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from google.protobuf import json_format

from keyleash.client import SyncVaultClient
from keyleash.client.errors import NotFound
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_ops.cli_common import (
    EXIT_OK,
    UsageError,
    connection_parent,
    format_money,
    guarded,
    print_json,
    print_table,
    vault_client,
)


def template_name_of(value: str, tenant: str = "") -> str:
    """A template's name from a full name, or a bare id: the tenant's when `tenant` is given."""
    if value.startswith(("policyTemplates/", "tenants/")):
        return value
    return f"tenants/{tenant}/policyTemplates/{value}" if tenant else f"policyTemplates/{value}"


def resolve_template(vault: SyncVaultClient, value: str, tenant: str) -> str:
    """A full name as given; a bare id names the tenant's template of that id if there is one,
    else the shipped one."""
    if value.startswith(("policyTemplates/", "tenants/")) or not tenant:
        return template_name_of(value)
    own = template_name_of(value, tenant)
    try:
        vault.get_policy_template(own)
    except NotFound:
        return template_name_of(value)
    return own


def _window(window: V.SpendCap.Window) -> str:
    return V.SpendCap.Window.Name(window).removeprefix("WINDOW_").lower()


def _limits(policy: V.Policy) -> str:
    caps = [f"{format_money(c.limit)}/{_window(c.window)}" for c in policy.spend_caps]
    if policy.HasField("run_spend_cap"):
        caps.append(f"{format_money(policy.run_spend_cap)}/run")
    return ", ".join(caps) or "-"


def _list(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        templates: list[V.PolicyTemplate] = []
        token = ""
        while True:
            page = vault.list_policy_templates(tenant_id=args.tenant, page_token=token)
            templates.extend(page.templates)
            token = page.next_page_token
            if not token:
                break
    if args.json:
        print_json({"templates": [json_format.MessageToDict(t) for t in templates]})
        return EXIT_OK
    rows = [[t.name, t.display_name or "-", _limits(t.policy), str(len(t.vendor_keys) or "-")]
            for t in templates]  # fmt: skip
    print_table(["NAME", "TITLE", "CAPS", "VENDOR KEYS"], rows)
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        template = vault.get_policy_template(resolve_template(vault, args.name, args.tenant or ""))
    print_json(json_format.MessageToDict(template, preserving_proto_field_name=True))
    return EXIT_OK


def _create(args: argparse.Namespace) -> int:
    try:
        body = json.loads(Path(args.file).read_text("utf-8") if args.file != "-" else input())
        template = json_format.ParseDict(body, V.PolicyTemplate())
    except (OSError, ValueError, json_format.ParseError) as error:
        raise UsageError(f"--file: not a PolicyTemplate in JSON ({error})") from None
    with vault_client(args) as vault:
        created = vault.create_policy_template(
            tenant_id=args.tenant, template_id=args.id, template=template,
            request_id=args.request_id or "",
        )  # fmt: skip
    print(created.name)
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        vault.delete_policy_template(template_name_of(args.name, args.tenant))
    print(f"deleted {template_name_of(args.name, args.tenant)}")
    return EXIT_OK


def _provision(args: argparse.Namespace) -> int:
    with vault_client(args) as vault:
        provisioned = vault.provision_agent(
            tenant_id=args.tenant, agent_id=args.agent, label=args.label or "",
            template=resolve_template(vault, args.template, args.tenant),
            request_id=args.request_id or "",
        )  # fmt: skip
    if args.json:
        print_json(provisioned)
        return EXIT_OK
    rows = [[k.key.policy.allowed_vendors[0] if k.key.policy.allowed_vendors else "-",
             k.key.name, _limits(k.key.policy), k.secret] for k in provisioned.keys]  # fmt: skip
    print_table(["VENDOR", "KEY", "CAPS", "SECRET (shown only now)"], rows)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash templates` and `keyleash agents`."""
    conn = connection_parent()
    templates = subparsers.add_parser("templates", help="policy templates to mint keys from")
    actions = templates.add_subparsers(dest="action", metavar="ACTION", required=True)
    list_ = actions.add_parser("list", parents=[conn], help="the shipped ones, then the tenant's")
    list_.add_argument("--tenant", required=True)
    list_.set_defaults(handler=guarded(_list))
    get = actions.add_parser("get", parents=[conn], help="one template, as JSON")
    get.add_argument("name", help="a name, a shipped id, or with --tenant the tenant's id")
    get.add_argument("--tenant")
    get.set_defaults(handler=guarded(_get))
    create = actions.add_parser("create", parents=[conn], help="a tenant's template (admin)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--id", required=True, help="[a-z0-9][a-z0-9-]{0,62}")
    create.add_argument("--file", required=True, help="a PolicyTemplate as JSON, or - for stdin")
    create.add_argument("--request-id")
    create.set_defaults(handler=guarded(_create))
    delete = actions.add_parser("delete", parents=[conn], help="a tenant's template (admin)")
    delete.add_argument("name")
    delete.add_argument("--tenant", required=True)
    delete.set_defaults(handler=guarded(_delete))

    agents = subparsers.add_parser("agents", help="provision an agent's keys from a template")
    agent_actions = agents.add_subparsers(dest="action", metavar="ACTION", required=True)
    provision = agent_actions.add_parser(
        "provision", parents=[conn], help="one vendor-locked key per vendor, all or none"
    )
    provision.add_argument("--tenant", required=True)
    provision.add_argument("--agent", required=True)
    provision.add_argument("--template", required=True, help="e.g. agent-per-vendor")
    provision.add_argument("--label")
    provision.add_argument("--request-id", help="idempotency: the same id provisions once")
    provision.set_defaults(handler=guarded(_provision))
