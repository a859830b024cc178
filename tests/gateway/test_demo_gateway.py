"""`keyleash demo`'s gateway step against a vault that keeps vendor secrets and a gateway: the
agent pays with only its vault key, the vendor stand-in sees the connection's secret, and the
payment that would cross the key's cap is refused before the vendor sees it (issue #15)."""

from __future__ import annotations

import asyncio
import json

import pytest

from keyleash_ops.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.gateway.conftest import Gateway, SealedSystem


async def test_the_demo_pays_through_the_gateway(
    capsys: pytest.CaptureFixture[str], sealed_system: SealedSystem, gateway: Gateway
) -> None:
    argv = ["demo", "--vault", sealed_system.vault_address, "--metering",
            sealed_system.metering_address, "--gateway", gateway.url, "--token", ADMIN_TOKEN]  # fmt: skip
    capsys.readouterr()
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    step = out.split("through the gateway")[1]
    assert "connection tenants/demo-" in step and "skipped" not in step
    assert "0.600000 USD: 200 ch_demo_" in step
    assert "0.600000 USD: 402 SPEND_CAP_EXCEEDED: STOP: spend cap exhausted" in step
    assert "Stripe saw 1 request(s), each with the connection's secret: True" in step
    assert "the vault key never: True" in step


async def test_the_demo_json_records_the_gateway_calls(
    capsys: pytest.CaptureFixture[str], sealed_system: SealedSystem, gateway: Gateway
) -> None:
    argv = ["demo", "--json", "--vault", sealed_system.vault_address, "--metering",
            sealed_system.metering_address, "--gateway", gateway.url, "--token", ADMIN_TOKEN]  # fmt: skip
    capsys.readouterr()
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    [step] = [s for s in json.loads(out)["steps"] if "through the gateway" in s["title"]]
    assert [(c["decision"], c["http_status"]) for c in step["calls"]] == [
        ("ALLOW", 200),
        ("SPEND_CAP_EXCEEDED", 402),
    ]
