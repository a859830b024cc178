"""`keyleash demo`: the whole story against a running system (or one started here), step by step.

A fresh tenant each run: a parent key for an agent (5.00 USD a day, 10 calls a minute), two child
keys, a burst that hits a rate limit, real charges, LLM token usage, the tenant crossing its daily
threshold and being throttled, freeze and unfreeze, revoking the parent so the children's next
calls fail, then the ledger grouped by agent run; last, a payment through the egress gateway
(demo_gateway.py) by an agent that holds only a vault key. The agent side uses
`keyleash.client` with the key secrets only (sync_guard); the operator side uses the admin token.

`--start` runs its own Redis, PostgreSQL, Vault, Metering and gateway on free loopback ports
(demo_system.py; data in a temp dir, removed afterwards) with a throwaway admin token.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from keyleash.client import (
    Denied,
    SyncMeteringClient,
    SyncVaultClient,
    agent_run,
    sync_guard,
)
from keyleash.client.errors import deny_reason_name
from keyleash.metering.v1 import metering_pb2 as P
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_core.settings import SettingsError
from keyleash_core.stores import StartupError
from keyleash_ops import cli_common as common
from keyleash_ops.cli_ledger import AUDIT_HEADERS, authorization_row, iter_authorizations
from keyleash_ops.demo_gateway import through_gateway
from keyleash_ops.demo_json import demo_document
from keyleash_ops.demo_system import StartFailed, started_system
from keyleash_ops.devstores import DevStoreError

AGENT = "billing-bot"
GATEWAY_URL_ENV = "KEYLEASH_GATEWAY_URL"
DEFAULT_GATEWAY_URL = "http://localhost:8080"  # where `keyleash up` serves it


class DemoError(Exception):
    """Something did not go as the demo expects (exit 1)."""


def usd(text: str) -> money_pb2.Money:
    return common.parse_money(text + "USD")


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Demo:
    """One demo run: admin clients for the operator, token-less clients for the agent."""

    vault: SyncVaultClient
    metering: SyncMeteringClient
    agent_vault: SyncVaultClient
    agent_metering: SyncMeteringClient
    tenant: str = field(default_factory=lambda: "demo-" + uuid.uuid4().hex[:10])
    step: int = 0
    keys: dict[str, V.MintKeyResponse] = field(default_factory=dict)
    # Every guarded call as data, for --json: step, key, run, decision, charged or retry_after.
    calls: list[dict[str, Any]] = field(default_factory=list)
    gateway_url: str = ""  # where the gateway step sends its HTTP calls
    vault_target: str = ""
    client_kwargs: dict[str, Any] = field(default_factory=dict)  # the operator's credentials

    def header(self, text: str) -> None:
        self.step += 1
        say(f"\n[{self.step}] {text}")

    def call(self, who: str, run: str, cost: str, actual: str | None = None) -> str:
        """One guarded call by key `who` in `run`; prints and returns ALLOW or the deny reason."""
        minted = self.keys[who]
        is_llm = who == "llm"
        try:
            with (
                agent_run(run),
                sync_guard(
                    self.agent_vault,
                    self.agent_metering,
                    key=minted.secret,
                    scope="openai.chat" if is_llm else "stripe.charges.write",
                    estimated_cost=usd(cost),
                    vendor="openai" if is_llm else "stripe",
                    method="POST",
                    path="/v1/chat/completions" if is_llm else "/v1/charges",
                ) as handle,
            ):
                handle.actual_cost = usd(actual or cost)
        except Denied as denied:
            wait = (
                f", retry_after {common.format_duration(denied.retry_after)}"
                if denied.retry_after
                else ""
            )
            say(f"    {who:8} {run}: DENY {denied.reason}{wait}")
            self._record(who, run, denied.reason, retry_after_seconds=denied.retry_after or 0)
            return denied.reason
        charged = handle.charge.event.amount if handle.charge else None
        say(f"    {who:8} {run}: ALLOW, charged {common.format_money(charged)}")
        self._record(who, run, "ALLOW", charged=common.format_money(charged))
        return "ALLOW"

    def _record(self, who: str, run: str, decision: str, **details: Any) -> None:
        self.calls.append({"step": self.step, "key": who, "agent_run_id": run,
                           "decision": decision, **details})  # fmt: skip


def expect(seen: str, wanted: str, what: str) -> None:
    if seen != wanted:
        raise DemoError(f"{what}: expected {wanted}, got {seen}")


def mint_keys(demo: Demo) -> None:
    demo.header("mint a parent key for the agent: 5.00 USD a day, 10 calls a minute")
    parent = demo.vault.mint_key(
        tenant_id=demo.tenant,
        agent_id=AGENT,
        label="demo parent",
        scopes=["stripe.charges.write", "openai.chat"],
        policy=V.Policy(
            rate_limits=[V.RateLimit(limit=10, window=common.parse_duration("60s"))],
            spend_caps=[V.SpendCap(limit=usd("5.00"), window=V.SpendCap.WINDOW_CALENDAR_DAY)],
        ),
        ttl=common.parse_duration("1h"),
    )
    demo.keys["parent"] = parent
    say(f"    {parent.key.name} (secret {parent.secret[:10]}…)")
    demo.header("the parent mints two children (with its own secret, never beyond its rights)")
    for who, scope, rate in (("payments", "stripe.charges.write", 3), ("llm", "openai.chat", 5)):
        child = demo.agent_vault.mint_key(
            agent_id=AGENT,
            label=f"demo {who}",
            scopes=[scope],
            policy=V.Policy(
                rate_limits=[V.RateLimit(limit=rate, window=common.parse_duration("60s"))]
            ),
            token=parent.secret,
        )
        demo.keys[who] = child
        say(f"    {who:8} {child.key.name}: {scope}, {rate} calls a minute")


def burst(demo: Demo, run: str) -> None:
    demo.header("a burst of 5 payments on a key allowed 3 calls a minute")
    outcomes = [demo.call("payments", run, "0.50", actual) for actual in
                ("0.42", "0.38", "0.47", "0.40", "0.40")]  # fmt: skip
    expect(outcomes[3], "RATE_LIMITED", "the 4th call of the burst")


def usage(demo: Demo, run: str) -> None:
    demo.header("LLM token usage: authorize, call gpt-4o, record 12000 in / 800 out tokens")
    minted = demo.keys["llm"]
    with agent_run(run):
        decision = demo.agent_vault.authorize(
            key=minted.secret, scope="openai.chat", vendor="openai", method="POST",
            path="/v1/chat/completions", estimated_cost=usd("0.10"), token=minted.secret,
        )  # fmt: skip
        if decision.decision != V.DECISION_ALLOW:
            raise DemoError(f"LLM call denied: {V.DenyReason.Name(decision.reason)}")
        recorded = demo.agent_metering.record_usage(
            key_id=decision.key_id, reservation_id=decision.reservation_id, model="gpt-4o",
            input_tokens=12_000, output_tokens=800, token=minted.secret,
        )  # fmt: skip
    say(f"    llm      {run}: priced {common.format_money(recorded.event.amount)} "
        f"({recorded.event.cost_source})")  # fmt: skip


def throttle(demo: Demo, run: str) -> None:
    demo.header("the tenant crosses its daily threshold (2.00 USD) and is throttled")
    demo.call("llm", run, "1.50", "1.50")
    tenant = demo.metering.get_tenant(demo.tenant)
    say(f"    tenant {demo.tenant}: spend today {common.format_money(tenant.spend_today)}, "
        f"throttled {'yes' if tenant.throttled else 'no'}")  # fmt: skip
    expect(demo.call("llm", run, "0.01"), "TENANT_THROTTLED", "a call after the threshold")
    demo.header("the operator raises the threshold to 50.00 USD and lifts the throttle")
    demo.metering.set_tenant_budget(
        tenant_id=demo.tenant, daily_threshold=usd("50.00"), lift_throttle=True
    )
    expect(demo.call("llm", run, "0.02", "0.015"), "ALLOW", "a call after the lift")


def freeze(demo: Demo, run: str) -> None:
    parent = demo.keys["parent"].key.name
    demo.header("freeze the parent: its whole subtree stops")
    demo.vault.freeze_key(name=parent, reason="demo: suspicious loop")
    expect(demo.call("llm", run, "0.01"), "KEY_FROZEN", "a child of a frozen parent")
    demo.header("unfreeze: calls go through again")
    demo.vault.unfreeze_key(parent)
    expect(demo.call("llm", run, "0.01"), "ALLOW", "a call after unfreeze")


def revoke(demo: Demo, runs: dict[str, str]) -> None:
    demo.header("revoke the parent: the children's next calls fail")
    revoked = demo.vault.revoke_key(name=demo.keys["parent"].key.name, reason="demo over")
    say(f"    revoked {revoked.key.name} and {revoked.revoked_descendants} descendant(s)")
    for who in ("payments", "llm"):
        expect(demo.call(who, runs[who], "0.01"), "KEY_REVOKED", who)


def _authorizations(demo: Demo, expected: int) -> list[V.Authorization]:
    """The tenant's recorded decisions, waiting up to ~5 s for the audit drainer."""
    rows: list[V.Authorization] = []
    for _ in range(50):
        request = V.ListAuthorizationsRequest(tenant_id=demo.tenant, page_size=1000)
        rows = list(iter_authorizations(demo.vault, request, 10.0))
        if len(rows) >= expected:
            break
        time.sleep(0.1)
    return rows


def _summary(run_audit: list[V.Authorization], run_events: list[P.BillingEvent]) -> str:
    allowed = sum(a.decision == V.DECISION_ALLOW for a in run_audit)
    denials: dict[str, int] = {}
    for a in run_audit:
        if a.decision == V.DECISION_DENY:
            name = deny_reason_name(a.reason)
            denials[name] = denials.get(name, 0) + 1
    denied = ", ".join(f"{n} {r}" for r, n in sorted(denials.items())) or "none"
    kinds: dict[str, int] = {}
    for e in run_events:
        kind = P.BillingEvent.Kind.Name(e.kind).removeprefix("KIND_").lower()
        label = f"{kind} {e.model}" if e.model else kind
        kinds[label] = kinds.get(label, 0) + 1
    billed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing"
    total = sum(e.amount.micros for e in run_events)
    spent = common.format_money(money_pb2.Money(currency_code="USD", micros=total))
    return f"{allowed} allowed, denied: {denied}; billed: {billed}; total {spent}"


def ledger(demo: Demo, decisions: int) -> None:
    demo.header("the ledger, grouped by agent run (ListAuthorizations + ListBillingEvents)")
    audit = _authorizations(demo, decisions)
    events = list(demo.metering.iter_billing_events(
        P.ListBillingEventsRequest(filter=P.BillingEventFilter(tenant_id=demo.tenant))
    ))  # fmt: skip
    for run in sorted({a.agent_run_id for a in audit} | {e.agent_run_id for e in events}):
        run_audit = [a for a in audit if a.agent_run_id == run]
        run_events = [e for e in events if e.agent_run_id == run]
        say(f"\n  run {run or '(none)'}: {_summary(run_audit, run_events)}")
        rows = [row[:4] + row[5:] for row in map(authorization_row, run_audit)]
        headers = AUDIT_HEADERS[:4] + AUDIT_HEADERS[5:]
        common.print_table(headers, rows, indent="    ")
    if len(audit) < decisions:
        say(f"  (audit shows {len(audit)} of {decisions} decisions so far; the drainer lags)")


def play(demo: Demo) -> None:
    runs = {"payments": f"{demo.tenant}-run-payments", "llm": f"{demo.tenant}-run-llm"}
    say(f"keyleash demo: tenant {demo.tenant}, agent {AGENT}")
    demo.metering.set_tenant_budget(tenant_id=demo.tenant, daily_threshold=usd("2.00"))
    say("    tenant daily threshold set to 2.000000 USD")
    mint_keys(demo)
    burst(demo, runs["payments"])
    usage(demo, runs["llm"])
    throttle(demo, runs["llm"])
    freeze(demo, runs["llm"])
    revoke(demo, runs)
    ledger(demo, decisions=13)
    through_gateway(demo, demo.gateway_url, demo.vault_target, demo.client_kwargs, say)
    say("\ndemo done.")


# ---- running ---------------------------------------------------------------------------------


def _run_demo(
    vault_target: str, metering_target: str, gateway_url: str, args: argparse.Namespace
) -> int:
    kwargs = common.client_kwargs(args)
    agent = {**kwargs, "token": ""}
    with (
        SyncVaultClient(vault_target, **kwargs) as vault,
        SyncMeteringClient(metering_target, **kwargs) as metering,
        SyncVaultClient(vault_target, **agent) as agent_vault,
        SyncMeteringClient(metering_target, **agent) as agent_metering,
    ):
        demo = Demo(vault, metering, agent_vault, agent_metering)
        demo.gateway_url, demo.vault_target, demo.client_kwargs = gateway_url, vault_target, kwargs
        if not args.json:
            play(demo)
            return common.EXIT_OK
        transcript = io.StringIO()
        error: DemoError | None = None
        with contextlib.redirect_stdout(transcript):
            try:
                play(demo)
            except DemoError as failed:
                error = failed
        common.print_json(
            demo_document(
                demo.tenant,
                demo.calls,
                transcript.getvalue(),
                None if error is None else str(error),
            )
        )
        if error is not None:
            raise error
    return common.EXIT_OK


def run(args: argparse.Namespace) -> int:
    if not args.start:
        gateway = args.gateway or os.environ.get(GATEWAY_URL_ENV) or DEFAULT_GATEWAY_URL
        gateway = gateway.rstrip("/")
        return _run_demo(common.vault_target(args), common.metering_target(args), gateway, args)
    # With --json stdout holds the document only; progress goes to stderr.
    progress = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else say
    progress("keyleash demo: starting Redis, PostgreSQL, Vault, Metering and the gateway …")
    with started_system() as system:
        args.token, args.tls, args.ca = system.token, False, None
        progress(f"    vault {system.vault}, metering {system.metering}, gateway {system.gateway}")
        return _run_demo(system.vault, system.metering, system.gateway, args)


def _guarded_run(args: argparse.Namespace) -> int:
    try:
        return common.guarded(run)(args)
    except DemoError as error:
        return common.fail(f"demo: {error}", common.EXIT_ANSWER)
    except StartFailed as error:
        return common.fail(f"demo: {error}", common.EXIT_ANSWER)
    except (DevStoreError, StartupError, SettingsError, OSError) as error:
        return common.fail(f"demo: cannot start the system: {error}", common.EXIT_USAGE)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash demo`."""
    parser = subparsers.add_parser(
        "demo",
        parents=[common.connection_parent()],
        help="walk through keys, limits, throttling, freeze and revoke, step by step",
    )
    parser.add_argument(
        "--start", action="store_true", help="start a throwaway system in this process"
    )
    parser.add_argument(
        "--gateway",
        metavar="URL",
        help=f"the gateway's base URL (default: ${GATEWAY_URL_ENV} or {DEFAULT_GATEWAY_URL})",
    )
    parser.set_defaults(handler=_guarded_run)
