"""`keyleash keys usage|history|whois`, keys named by id, readable outputs (issue 14, items
10-12, 14, 15), against the real servers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from google.protobuf import json_format

from keyleash.client import VaultClient
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_ops.cli_common import UsageError, format_duration, parse_money
from tests.conftest import ADMIN_TOKEN, System
from tests.integration.test_cli import Cli, kl, mint, spend_once

__all__ = ["kl"]  # the CLI fixture, shared with test_cli


async def _authorize_hold(system: System, secret: str, run_id: str) -> V.AuthorizeResponse:
    """An allowed call whose hold (0.30 USD) stays open: no charge follows."""
    async with VaultClient(system.vault_address, token=secret) as vault:
        return await vault.authorize(
            scope="api.call", vendor="stripe", method="POST", path="/v1/charges",
            estimated_cost=parse_money("0.30USD"),
            agent_run_id=run_id,
        )  # fmt: skip


async def test_usage_reads_every_limit_and_consumes_nothing(
    kl: Cli, system: System, tenant: str
) -> None:
    minted = await mint(kl, tenant)
    key_id, secret = minted["key"]["key_id"], minted["secret"]
    run_id = f"{tenant}-run"
    await spend_once(system, secret, run_id)  # 0.50 held, settled at 0.40
    held = await _authorize_hold(system, secret, run_id)
    assert held.decision == V.DECISION_ALLOW

    open_hold = None
    for _ in range(50):  # open holds are listed once the audit drainer recorded the decision
        usage = await kl("keys", "usage", key_id, "--json")
        assert usage.code == 0, usage.err
        holds = usage.json()["keys"][0].get("open_holds", [])
        if holds:
            open_hold = holds[0]
            break
        await asyncio.sleep(0.1)
    assert open_hold is not None and open_hold["reservation_id"] == held.reservation_id
    assert open_hold["amount"] == {"currency_code": "USD", "micros": "300000"}

    document = usage.json()
    (me,) = document["keys"]
    quotas = {q["quota"]: q for q in me["quotas"]}
    assert set(quotas) == {"rate/60s", "spend/calendar_day", "spend/calendar_month"}
    assert (quotas["rate/60s"]["used"], quotas["rate/60s"]["remaining"]) == ("2", "8")
    assert quotas["spend/calendar_day"]["used"] == "700000"  # 0.40 settled + 0.30 held

    again = await kl("keys", "usage", f"tenants/{tenant}/keys/{key_id}", "--json")
    assert again.json()["keys"][0]["quotas"] == me["quotas"]  # reading consumed nothing

    table = await kl("keys", "usage", key_id)
    assert table.code == 0 and "nothing consumed" in table.out
    assert re.search(
        r"spend/calendar_day\s+0\.700000 USD\s+5\.000000 USD\s+4\.300000 USD", table.out
    )
    assert "open holds: 1 (0.300000 USD)" in table.out and " UTC" in table.out


async def test_usage_of_a_child_shows_its_ancestors_and_run_cap(
    kl: Cli, system: System, tenant: str
) -> None:
    parent = await mint(kl, tenant)
    async with VaultClient(system.vault_address, token=parent["secret"]) as vault:
        policy = json_format.ParseDict(parent["key"]["policy"], V.Policy())
        del policy.rate_limits[:]
        policy.rate_limits.add(limit=3).window.FromSeconds(60)
        policy.run_spend_cap.CopyFrom(parse_money("1.00USD"))
        policy.max_calls = 5
        child = await vault.mint_key(agent_id="child", scopes=["api.call"], policy=policy)
        own = await vault.get_key_usage(token=child.secret, agent_run_id="r1")
    assert [k.name for k in own.keys] == [child.key.name, parent["key"]["name"]]
    assert {q.quota for q in own.keys[0].quotas} == {
        "rate/60s",
        "calls",
        "run",
        "spend/calendar_day",
        "spend/calendar_month",
    }

    cli = await kl("keys", "usage", child.key.key_id, "--run", "r1")
    assert cli.code == 0 and parent["key"]["name"] in cli.out and "run" in cli.out

    outsider = await mint(kl, tenant)
    denied = await kl("keys", "usage", outsider["key"]["key_id"], token=child.secret)
    assert denied.code == 3 and denied.err.startswith("keyleash: PERMISSION_DENIED")


async def test_history_records_who_did_what_and_why(kl: Cli, tenant: str) -> None:
    key_id = (await mint(kl, tenant))["key"]["key_id"]
    assert (await kl("keys", "freeze", key_id, "--reason", "incident 7: runaway")).code == 0

    got = await kl("keys", "get", key_id)  # a bare id names the key (the tables print ids)
    assert got.code == 0 and "frozen" in got.out and "incident 7: runaway" in got.out

    assert (await kl("keys", "unfreeze", key_id)).code == 0
    assert (
        await kl("keys", "set-policy", key_id, "--max-calls", "9", "--reason", "bump")
    ).code == 0
    assert (await kl("keys", "revoke", key_id, "--reason", "done")).code == 0

    history = await kl("keys", "history", key_id, "--json")
    events = history.json()["events"]
    assert [e["action"] for e in events] == [
        "mint",
        "freeze",
        "unfreeze",
        "update_policy",
        "revoke",
    ]
    assert [e.get("reason", "") for e in events] == ["", "incident 7: runaway", "", "bump", "done"]
    assert all(e["actor"].startswith("admin:") and ADMIN_TOKEN not in e["actor"] for e in events)
    table = await kl("keys", "history", key_id)
    assert (
        table.out.startswith("TIME") and "incident 7: runaway" in table.out and " UTC" in table.out
    )


async def test_keys_are_named_by_id_or_name(kl: Cli, tenant: str) -> None:
    key = (await mint(kl, tenant))["key"]
    by_name = await kl("keys", "get", key["name"], "--json")
    by_id = await kl("keys", "get", key["key_id"], "--json")
    assert by_name.json() == by_id.json()

    nothing = await kl("keys", "list", "--tenant", tenant, "--parent", "k_nosuchkey000000")
    assert nothing.code == 1 and "NOT_FOUND" in nothing.err and "k_nosuchkey000000" in nothing.err
    children = await kl("keys", "list", "--tenant", tenant, "--parent", key["name"])
    assert children.code == 0 and children.out.startswith("NAME")


async def test_whois_names_the_key_and_never_the_secret(kl: Cli, tenant: str) -> None:
    minted = await mint(kl, tenant)
    secret = minted["secret"]
    assert (await kl("keys", "freeze", minted["key"]["key_id"])).code == 0
    who = await kl("keys", "whois", secret)
    assert who.code == 0 and minted["key"]["name"] in who.out and tenant in who.out
    assert "frozen" in who.out and "KEY_FROZEN" in who.out and secret not in who.out + who.err
    as_json = await kl("keys", "whois", secret, "--json")
    assert as_json.json()["key"]["tenant_id"] == tenant and secret not in as_json.out
    unknown = await kl("keys", "whois", "vk_notakey")
    assert unknown.code == 0 and "names no key" in unknown.out


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.4, "0.4s"), (59.94, "59.9s"), (61, "1m 1s"), (21521.8, "5h 58m"), (3600, "1h"),
     (90061, "1d 1h")],
)  # fmt: skip
def test_durations_read_as_units(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(UsageError, match="amounts must be positive"):
        parse_money("-1.00USD")


async def test_negative_cap_is_a_usage_error(kl: Cli, tenant: str) -> None:
    bad = await kl("keys", "mint", "--tenant", tenant, "--agent", "a", "--cap=-5USD/day")
    assert bad.code == 2 and "amounts must be positive" in bad.err


async def test_deny_messages_show_money_and_reasons_are_listed(
    kl: Cli, system: System, tenant: str
) -> None:
    secret = (await mint(kl, tenant))["secret"]  # 5.00 USD a day, at most 1.00 USD a call
    async with VaultClient(system.vault_address, token=secret) as vault:
        for _ in range(5):
            allowed = await vault.authorize(scope="api.call", estimated_cost=parse_money("1USD"),
                                            vendor="stripe", method="POST", path="/v1/charges")  # fmt: skip
            assert allowed.decision == V.DECISION_ALLOW
        denied = await vault.authorize(scope="api.call", estimated_cost=parse_money("1USD"),
                                       vendor="stripe", method="POST", path="/v1/charges")  # fmt: skip
    assert denied.reason == V.DENY_REASON_SPEND_CAP_EXCEEDED
    assert "used 5.000000 USD of 5.000000 USD" in denied.message, denied.message

    bad = await kl("audit", "--tenant", tenant, "--reason", "TOO_FAST")
    assert bad.code == 2 and "RATE_LIMITED" in bad.err and "SPEND_CAP_EXCEEDED" in bad.err


async def test_lists_say_when_cut_and_refuse_an_inverted_range(
    kl: Cli, system: System, tenant: str
) -> None:
    minted = await mint(kl, tenant)
    for run in ("r1", "r2"):
        await spend_once(system, minted["secret"], f"{tenant}-{run}")
    events = await kl("events", "list", "--tenant", tenant, "--limit", "1")
    assert events.code == 0 and "showing the newest 1 events (newest first)" in events.err
    as_json = await kl("events", "list", "--tenant", tenant, "--limit", "1", "--json")
    assert as_json.json()["truncated"] is True and len(as_json.json()["events"]) == 1
    assert as_json.json()["events"][0]["agent_run_id"] == f"{tenant}-r2"  # the newest
    oldest = await kl("events", "list", "--tenant", tenant, "--limit", "1", "--oldest-first",
                      "--json")  # fmt: skip
    assert oldest.json()["events"][0]["agent_run_id"] == f"{tenant}-r1"
    assert "showing the oldest 1 events (oldest first)" in oldest.err
    for _ in range(50):  # decisions are listed once the audit drainer recorded them
        audit = await kl("audit", "--tenant", tenant, "--json")
        if len(audit.json()["authorizations"]) == 2:
            break
        await asyncio.sleep(0.1)
    runs = [a["agent_run_id"] for a in audit.json()["authorizations"]]
    assert runs == [f"{tenant}-r2", f"{tenant}-r1"]
    audit_oldest = await kl("audit", "--tenant", tenant, "--oldest-first", "--json")
    assert [a["agent_run_id"] for a in audit_oldest.json()["authorizations"]] == runs[::-1]
    whole = await kl("events", "list", "--tenant", tenant, "--json")
    assert whole.json()["truncated"] is False and whole.err == ""

    spend = await kl("spend", "--key", minted["key"]["key_id"], "--json")  # a bare id
    assert spend.code == 0 and spend.json()["totals"][0]["micros"] == "800000"

    for command in (["audit"], ["events", "list"]):
        inverted = await kl(*command, "--tenant", tenant, "--since", "1h", "--until", "2h")
        assert inverted.code == 2 and "--until 2h is not after --since 1h" in inverted.err


async def test_usage_reloads_a_key_redis_lost(
    kl: Cli, system: System, tenant: str, redis_client: Any
) -> None:
    minted = await mint(kl, tenant)
    await spend_once(system, minted["secret"], f"{tenant}-run")  # 0.40 USD settled
    # Redis loses the tenant's state (a flush of this tenant's keys only).
    doomed = [name async for name in redis_client.scan_iter(match=f"kl:{{{tenant}}}:*")]
    assert doomed and await redis_client.delete(*doomed)
    usage = await kl("keys", "usage", minted["key"]["key_id"], "--json")
    assert usage.code == 0, usage.err
    quotas = {q["quota"]: q for q in usage.json()["keys"][0]["quotas"]}
    assert quotas["spend/calendar_day"]["used"] == "400000"  # rebuilt from Postgres


async def test_usage_without_a_name_needs_a_key_holder(system: System) -> None:
    from keyleash.client.errors import InvalidArgument

    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as vault:
        with pytest.raises(InvalidArgument) as raised:
            await vault.get_key_usage()
    assert any(v.field == "name" for v in raised.value.field_violations)
