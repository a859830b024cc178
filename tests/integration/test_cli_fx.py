"""`keyleash fx set|list` and the converted amounts `keyleash events` shows, against the real
servers (the `kl` fixture of test_cli.py). Sets only DKK/USD, a pair no other test uses."""

from __future__ import annotations

import csv
import io
from typing import Any

from keyleash.type.v1 import money_pb2
from tests.integration.test_cli import Cli, kl
from tests.integration.test_fx import charge, usd_cap
from tests.integration.test_metering import admin, mint

__all__ = ["kl"]


async def test_fx_set_list_and_the_events_it_converts(
    kl: Cli, vault: Any, metering: Any, tenant: str
) -> None:
    before = await kl("fx", "list", "--currency", "EUR")
    assert before.code == 0
    assert ["EUR/USD", "1.08", "shipped"] in [line.split() for line in before.out.splitlines()]
    assert "DKK" not in before.out

    set_ = await kl("fx", "set", "dkk/usd", "0.145")
    assert set_.code == 0, set_.err
    assert "DKK/USD = 0.145 in force" in set_.out
    listed = await kl("fx", "list", "--currency", "DKK", "--json")
    (rate,) = listed.json()["rates"]
    assert (rate["rate"], rate["source"]) == ("0.145", "admin")
    assert listed.json()["fx_table_version"] == rate["fx_table_version"]

    bad = await kl("fx", "set", "DKK/USD", "0.1234567891")
    assert bad.code == 2 and "9 decimal places" in bad.err

    minted = await mint(vault, admin(), tenant, spend_caps=[usd_cap(10**9)])
    amount = money_pb2.Money(currency_code="DKK", micros=7_000_000)
    await charge(metering, minted.key.key_id, amount)
    exported = await kl("events", "export", "--tenant", tenant, "--format", "csv")
    (record,) = list(csv.DictReader(io.StringIO(exported.out)))
    assert (record["amount"], record["currency"]) == ("7.000000", "DKK")
    assert record["converted"] == f"1.015000 USD @0.145 ({rate['fx_table_version']})"
    events = await kl("events", "list", "--tenant", tenant)
    assert "7.000000 DKK" in events.out and "1.015000 USD @0.145" in events.out
