"""The operations CLI (`keyleash keys|spend|events|tenant|audit`) against the real servers.

The servers run in the test's event loop, so each CLI call runs in a thread
(`asyncio.to_thread(main, argv)`); the CLI uses the blocking clients there. Output is captured
with capsys (sys.stdout/sys.stderr are replaced process-wide, so the thread's prints land there).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from keyleash.client import MeteringClient, VaultClient, agent_run, guard
from keyleash_ops.cli import main
from keyleash_ops.cli_common import parse_money
from tests.conftest import ADMIN_TOKEN, System


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
def kl(capsys: pytest.CaptureFixture[str], system: System) -> Cli:
    """`await kl("keys", "list", ...)` runs `keyleash ...` against the test servers (admin
    token unless `token=` is given; `connect=False` leaves the connection flags out)."""

    async def run(*argv: str, token: str = ADMIN_TOKEN, connect: bool = True) -> Result:
        flags = ["--vault", system.vault_address, "--metering", system.metering_address]
        args = [*argv, *flags, "--token", token] if connect else list(argv)
        capsys.readouterr()
        code = await asyncio.to_thread(main, args)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


async def mint(kl: Cli, tenant: str) -> Any:
    result = await kl(
        "keys", "mint", "--json", "--tenant", tenant, "--agent", "bot",
        "--label", "run-1", "--scope", "api.call", "--scope", "api.read", "--rate", "10/60s",
        "--cap", "5.00USD/day", "--cap", "20 usd/month", "--max-per-call", "1.00USD",
        "--endpoint", "POST /v1/charges", "--vendor", "stripe", "--ttl", "1h",
    )  # fmt: skip
    assert result.code == 0, result.err
    return result.json()


async def spend_once(system: System, secret: str, run_id: str) -> None:
    """One guarded call (estimate 0.50, actual 0.40 USD) in `run_id`."""
    async with (
        VaultClient(system.vault_address, token="") as vault,
        MeteringClient(system.metering_address, token="") as metering,
    ):
        with agent_run(run_id):
            async with guard(
                vault, metering, key=secret, scope="api.call", vendor="stripe", method="POST",
                path="/v1/charges", estimated_cost=("USD", 500_000),
            ) as call:  # fmt: skip
                call.actual_cost = ("USD", 400_000)


async def test_incident_walkthrough(kl: Cli, system: System, tenant: str) -> None:
    minted = await mint(kl, tenant)
    key, secret = minted["key"], minted["secret"]
    name = key["name"]
    assert (
        secret.startswith("vk_") and key["policy"]["spend_caps"][0]["limit"]["micros"] == "5000000"
    )

    got = await kl("keys", "get", name)
    assert got.code == 0 and name in got.out
    assert "5.000000 USD/day" in got.out and "10/60s" in got.out and "active" in got.out

    listed = await kl("keys", "list", "--tenant", tenant)
    assert listed.code == 0 and name in listed.out and listed.out.startswith("NAME")

    run_id = f"{tenant}-run"
    await spend_once(system, secret, run_id)

    frozen = await kl("keys", "freeze", name, "--reason", "runaway")
    assert frozen.code == 0 and "frozen" in frozen.out

    audit = Result(1, "", "")
    for _ in range(50):  # the audit drainer commits within about a second
        audit = await kl("audit", "--tenant", tenant, "--run", run_id)
        if "allow" in audit.out:
            break
        await asyncio.sleep(0.1)
    assert audit.code == 0 and audit.out.startswith("TIME")
    assert "POST /v1/charges" in audit.out and "0.500000 USD" in audit.out
    assert "0.400000 USD" in audit.out  # settled
    audit_json = await kl("audit", "--tenant", tenant, "--decision", "allow", "--json")
    rows = audit_json.json()["authorizations"]
    assert isinstance(rows, list) and len(rows) == 1 and rows[0]["agent_run_id"] == run_id

    spend = await kl("spend", "--run", run_id)
    assert spend.code == 0 and "0.400000 USD" in spend.out and "1 event" in spend.out
    spend_json = await kl("spend", "--key", name, "--json")
    assert spend_json.json()["totals"] == [{"currency_code": "USD", "micros": "400000"}]

    budget = await kl("tenant", "set-budget", "--tenant", tenant, "--daily", "50.00USD")
    assert budget.code == 0 and "50.000000 USD" in budget.out
    tenant_view = await kl("tenant", "get", "--tenant", tenant, "--json")
    assert tenant_view.json()["daily_threshold"] == {"currency_code": "USD", "micros": "50000000"}
    lifted = await kl("tenant", "set-budget", "--tenant", tenant, "--lift")
    assert lifted.code == 0 and "50.000000 USD" in lifted.out  # --lift alone keeps the threshold

    exported = await kl("events", "export", "--tenant", tenant, "--format", "csv")
    assert exported.code == 0
    records = list(csv.DictReader(io.StringIO(exported.out)))
    assert [(r["kind"], r["amount"], r["currency"], r["agent_run_id"]) for r in records] == [
        ("charge", "0.400000", "USD", run_id)
    ]
    jsonl = await kl("events", "export", "--tenant", tenant, "--run", run_id)
    assert [json.loads(line)["amount"]["micros"] for line in jsonl.out.splitlines()] == ["400000"]
    events = await kl("events", "list", "--tenant", tenant, "--key", name)
    assert events.code == 0 and "0.400000 USD" in events.out and run_id in events.out

    revoked = await kl("keys", "revoke", name, "--reason", "done")
    assert revoked.code == 0 and "revoked" in revoked.out


async def test_set_policy_replaces_only_the_fields_given(kl: Cli, tenant: str) -> None:
    name = (await mint(kl, tenant))["key"]["name"]
    updated = await kl(
        "keys", "set-policy", name, "--cap", "2.50USD/day", "--max-calls", "100", "--json"
    )
    assert updated.code == 0, updated.err
    policy = updated.json()["policy"]
    assert policy["spend_caps"] == [
        {"limit": {"currency_code": "USD", "micros": "2500000"}, "window": "WINDOW_CALENDAR_DAY"}
    ]
    assert policy["max_calls"] == "100" and policy["rate_limits"][0]["limit"] == "10"
    assert policy["allowed_vendors"] == ["stripe"]
    assert (await kl("keys", "revoke", name)).code == 0
    unfrozen = await kl("keys", "unfreeze", name)
    assert unfrozen.code == 1, unfrozen.err  # a revoked key cannot be unfrozen: a state answer
    assert unfrozen.err.count("\n") == 1 and unfrozen.err.startswith("keyleash: ")


async def test_exit_codes(kl: Cli, tenant: str) -> None:
    bad_token = await kl("keys", "list", "--tenant", tenant, token="not-a-token")
    assert bad_token.code == 3 and bad_token.out == ""
    assert bad_token.err.startswith("keyleash: UNAUTHENTICATED") and bad_token.err.count("\n") == 1

    bad_money = await kl(
        "keys", "mint", "--tenant", tenant, "--agent", "a", "--cap", "5.0.0USD/day"
    )
    assert bad_money.code == 2 and "bad amount" in bad_money.err and bad_money.err.count("\n") == 1

    usage = await kl("keys", "mint", "--agent", "a")
    assert usage.code == 2 and usage.err.count("\n") == 1 and "--tenant" in usage.err

    missing = await kl("keys", "get", f"tenants/{tenant}/keys/k_00000000000000000000")
    assert missing.code == 1 and missing.err.startswith("keyleash: NOT_FOUND")

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    unreachable = await kl(
        "spend",
        "--tenant",
        tenant,
        "--metering",
        dead,
        "--timeout",
        "0.5",
        "--token",
        ADMIN_TOKEN,
        connect=False,
    )
    assert unreachable.code == 4 and unreachable.err.startswith("keyleash: UNAVAILABLE")
    assert unreachable.err.count("\n") == 1 and "Traceback" not in unreachable.err


@pytest.mark.parametrize(
    ("text", "micros", "currency"),
    [("5.00USD", 5_000_000, "USD"), ("5 USD", 5_000_000, "USD"), ("0.000001eur", 1, "EUR"),
     ("-1.5 USD", -1_500_000, "USD"), ("19.99 USD", 19_990_000, "USD"),
     ("123456789.123456USD", 123_456_789_123_456, "USD")],
)  # fmt: skip
def test_parse_money_is_exact(text: str, micros: int, currency: str) -> None:
    money = parse_money(text)
    assert (money.micros, money.currency_code) == (micros, currency)


@pytest.mark.parametrize("text", ["5", "USD", "5.0000001USD", "1,5USD", "5.00 US", "1e3USD"])
def test_parse_money_rejects(text: str) -> None:
    from keyleash_ops.cli_common import UsageError

    with pytest.raises(UsageError):
        parse_money(text)
