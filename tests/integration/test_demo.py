"""`keyleash demo` against the running servers (in a thread: the servers use the test's loop)."""

from __future__ import annotations

import asyncio

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
