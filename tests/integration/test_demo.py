"""`keyleash demo` against the running servers (in a thread: the servers use the test's loop)."""

from __future__ import annotations

import asyncio
import json

import pytest

from keyleash_ops.cli import main
from tests.conftest import ADMIN_TOKEN, System


async def test_demo_walks_through_every_step(
    capsys: pytest.CaptureFixture[str], system: System
) -> None:
    argv = ["demo", "--vault", system.vault_address, "--metering", system.metering_address,
            "--token", ADMIN_TOKEN]  # fmt: skip
    capsys.readouterr()
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    for expected in (
        "DENY RATE_LIMITED, retry_after",
        "priced 0.038000 USD",  # 12000 input + 800 output tokens of gpt-4o
        "throttled yes",
        "DENY TENANT_THROTTLED",
        "DENY KEY_FROZEN",
        "DENY KEY_REVOKED",
        "revoked tenants/",
        "the ledger, grouped by agent run",
        "demo done.",
    ):
        assert expected in out, f"{expected!r} missing from:\n{out}"
    assert out.count("DENY KEY_REVOKED") == 2  # both children
    ledger = out.split("the ledger, grouped by agent run")[1]
    assert "-run-payments: 3 allowed, denied: 1 KEY_REVOKED, 2 RATE_LIMITED" in ledger
    assert "-run-llm: 4 allowed" in ledger and "1 usage gpt-4o" in ledger
    assert "total 1.270000 USD" in ledger and "total 1.563000 USD" in ledger
    assert "audit shows" not in ledger  # every decision reached the audit table


async def test_demo_against_an_unreachable_system_fails_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    code = await asyncio.to_thread(
        main, ["demo", "--vault", "127.0.0.1:1", "--metering", "127.0.0.1:1", "--timeout", "0.5",
               "--token", "x"],
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 4 and err.startswith("keyleash: UNAVAILABLE") and err.count("\n") == 1


async def test_demo_json_prints_one_document(
    capsys: pytest.CaptureFixture[str], system: System
) -> None:
    argv = ["demo", "--json", "--vault", system.vault_address, "--metering",
            system.metering_address, "--token", ADMIN_TOKEN]  # fmt: skip
    capsys.readouterr()
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    document = json.loads(out)  # the whole of stdout is one JSON document
    assert document["ok"] is True and document["tenant"].startswith("demo-")
    titles = [step["title"] for step in document["steps"]]
    assert any("ledger" in title for title in titles)
    decisions = [call["decision"] for step in document["steps"] for call in step["calls"]]
    assert "RATE_LIMITED" in decisions and decisions.count("KEY_REVOKED") == 2
    assert "ALLOW" in decisions


async def test_without_vendor_secrets_the_gateway_step_says_why_it_is_skipped(
    capsys: pytest.CaptureFixture[str], system: System
) -> None:
    argv = ["demo", "--vault", system.vault_address, "--metering", system.metering_address,
            "--gateway", "http://127.0.0.1:1", "--token", ADMIN_TOKEN]  # fmt: skip
    capsys.readouterr()
    code = await asyncio.to_thread(main, argv)
    out, _ = capsys.readouterr()
    assert code == 0
    step = out.split("through the gateway")[1]
    assert "skipped: the vault keeps no vendor secrets here" in step, step


async def test_demo_start_runs_every_part_itself_including_the_gateway(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["demo", "--start", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "gateway http://127.0.0.1:" in err  # progress goes to stderr with --json
    document = json.loads(out)
    [step] = [s for s in document["steps"] if "through the gateway" in s["title"]]
    assert [c["decision"] for c in step["calls"]] == ["ALLOW", "SPEND_CAP_EXCEEDED"]
