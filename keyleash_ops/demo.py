"""`keyleash demo`: the whole story against a running system (or one started here), step by step.

A fresh tenant each run: a parent key for an agent (5.00 USD a day, 10 calls a minute), two child
keys, a burst that hits a rate limit, real charges, LLM token usage, the tenant crossing its daily
threshold and being throttled, freeze and unfreeze, revoking the parent so the children's next
calls fail, then the ledger grouped by agent run. The agent side uses `keyleash.client` with the
key secrets only (sync_guard); the operator side uses the admin token.

`--start` runs its own Redis, PostgreSQL, Vault and Metering on free loopback ports (data in a
temp dir, removed afterwards) with a throwaway admin token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
from keyleash_ops.devstores import DevStoreError, start_postgres, start_redis

AGENT = "billing-bot"


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
            wait = f", retry_after {denied.retry_after:.1f}s" if denied.retry_after else ""
            say(f"    {who:8} {run}: DENY {denied.reason}{wait}")
            return denied.reason
        charged = handle.charge.event.amount if handle.charge else None
        say(f"    {who:8} {run}: ALLOW, charged {common.format_money(charged)}")
        return "ALLOW"


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
    say("\ndemo done.")


# ---- running ---------------------------------------------------------------------------------


def _run_demo(vault_target: str, metering_target: str, args: argparse.Namespace) -> int:
    kwargs = common.client_kwargs(args)
    agent = {**kwargs, "token": ""}
    with (
        SyncVaultClient(vault_target, **kwargs) as vault,
        SyncMeteringClient(metering_target, **kwargs) as metering,
        SyncVaultClient(vault_target, **agent) as agent_vault,
        SyncMeteringClient(metering_target, **agent) as agent_metering,
    ):
        play(Demo(vault, metering, agent_vault, agent_metering))
    return common.EXIT_OK


@dataclass
class _Started:
    vault: str
    metering: str
    token: str


@contextlib.contextmanager
def started_system() -> Iterator[_Started]:
    """Redis, PostgreSQL, Vault and Metering on free loopback ports, for as long as it lasts."""
    base = Path(tempfile.mkdtemp(prefix="keyleash-demo-", dir="/tmp"))
    base.chmod(0o755)
    token = "kl_admin_" + secrets.token_urlsafe(24)
    stores: list[Any] = []
    try:
        stores.append(start_redis(base / "redis", persistent=False))
        stores.append(start_postgres(base / "postgres", durable=False))
        env = {
            "KEYLEASH_REDIS_URL": stores[0].url,
            "KEYLEASH_DATABASE_URL": stores[1].url,
            "KEYLEASH_KEY_PEPPER": secrets.token_urlsafe(24),
            "KEYLEASH_ADMIN_TOKEN_SHA256": hashlib.sha256(token.encode()).hexdigest(),
        }
        with _ServerThread(env) as ports:
            yield _Started(f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}", token)
    finally:
        for store in reversed(stores):
            store.stop()
        shutil.rmtree(base, ignore_errors=True)


class _ServerThread:
    """Both servers in their own event loop on a background thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.ready = threading.Event()
        self.ports: tuple[int, int] | None = None
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name="keyleash-demo", daemon=True)

    def __enter__(self) -> tuple[int, int]:
        self.thread.start()
        self.ready.wait(120)
        if self.ports is None:
            raise DemoError(f"could not start the servers: {self.error or 'timed out'}")
        return self.ports

    def __exit__(self, *_: object) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the waiting thread
            self.error = error
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        from metering_service.server import create_server as create_metering
        from metering_service.settings import MeteringSettings
        from vault_service.server import create_server as create_vault
        from vault_service.settings import VaultSettings

        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        vault = await create_vault(VaultSettings.from_env(self.env), "127.0.0.1:0")
        metering = await create_metering(MeteringSettings.from_env(self.env), "127.0.0.1:0")
        try:
            self.ports = (vault.port, metering.port)
            self.ready.set()
            await self.stop.wait()
        finally:
            await metering.stop(2)
            await vault.stop(2)


def run(args: argparse.Namespace) -> int:
    if not args.start:
        return _run_demo(common.vault_target(args), common.metering_target(args), args)
    say("keyleash demo: starting Redis, PostgreSQL, Vault and Metering …")
    with started_system() as system:
        args.token, args.tls, args.ca = system.token, False, None
        say(f"    vault {system.vault}, metering {system.metering}")
        return _run_demo(system.vault, system.metering, args)


def _guarded_run(args: argparse.Namespace) -> int:
    try:
        return common.guarded(run)(args)
    except DemoError as error:
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
    parser.set_defaults(handler=_guarded_run)
