"""Keyleash's MCP tools through the official SDK client, over streamable HTTP and stdio: each
tool acts with the caller's own key; a child minted over MCP stays within its parent; a frozen or
revoked key's tools all answer STOP; a spent budget answers STOP, never a transient error."""

from __future__ import annotations

import json
from typing import Any

import httpx2
from mcp_types import CallToolResult

from keyleash.client import VaultClient
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from tests.conftest import System
from tests.mcp.conftest import Connect, mint_parent

TOOLS = {
    "budget_status",
    "mint_child_key",
    "freeze_child_key",
    "revoke_child_key",
    "spend_report",
    "request_approval",
    "approval_status",
}


def usd(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


def day_cap(micros: int) -> V.SpendCap:
    return V.SpendCap(limit=usd(micros), window=V.SpendCap.WINDOW_CALENDAR_DAY)


def text(result: CallToolResult) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    found: dict[str, Any] = result.structured_content or json.loads(text(result))
    return found


async def spend(system: System, secret: str, micros: int) -> V.AuthorizeResponse:
    async with VaultClient(system.vault_address, token=secret) as vault:
        return await vault.authorize(scope="api.call", estimated_cost=usd(micros))


async def test_tools_declare_complete_input_schemas(over_http: Connect, admin_vault: VaultClient,
                                                    tenant: str) -> None:  # fmt: skip
    parent = await mint_parent(admin_vault, tenant)
    async with over_http(parent.secret) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) == TOOLS
    for tool in listed.values():
        assert tool.description and tool.input_schema["type"] == "object"
    freeze = listed["freeze_child_key"].input_schema["properties"]
    assert freeze["reason"]["maxLength"] == 500 and "description" in freeze["key"]
    mint = json.dumps(listed["mint_child_key"].input_schema)
    for constraint in ('"pattern"', '"maximum"', '"minItems"', '"enum"', "ttl_seconds"):
        assert constraint in mint, constraint
    assert (
        listed["budget_status"].annotations and listed["budget_status"].annotations.read_only_hint
    )


async def test_a_child_minted_over_mcp_is_limited_by_its_parent(
    over_http: Connect, admin_vault: VaultClient, system: System, tenant: str
) -> None:
    parent = await mint_parent(admin_vault, tenant, spend_caps=[day_cap(3_000_000)])
    async with over_http(parent.secret) as client:
        status = data(await client.call_tool("budget_status", {}))
        assert {"quota": "spend/calendar_day", "remaining": "3.000000 USD"}.items() <= {
            k: v for k, v in status["limits"][0].items() if k in ("quota", "remaining")
        }.items()
        wider = await client.call_tool("mint_child_key", {"spec": {
            "agent_id": "helper", "scopes": ["api.call"],
            "spend_caps": [{"amount": "9.00", "currency": "USD", "window": "day"}]}})  # fmt: skip
        assert wider.is_error and "not allowed (EXCEEDS_PARENT)" in text(wider)
        assert "Do not retry" in text(wider)
        minted = data(await client.call_tool("mint_child_key", {"spec": {
            "agent_id": "helper", "scopes": ["api.call"], "label": "sub-agent",
            "spend_caps": [{"amount": "5.00", "currency": "USD", "window": "month"}]}}))  # fmt: skip
    child = minted["secret"]
    assert child.startswith("vk_") and minted["key"].startswith(f"tenants/{tenant}/keys/")
    assert [r.decision for r in [await spend(system, child, 1_000_000) for _ in range(3)]] == [
        V.DECISION_ALLOW] * 3  # fmt: skip
    denied = await spend(system, child, 1)  # the parent's 3.00 a day binds the child
    assert denied.reason == V.DENY_REASON_SPEND_CAP_EXCEEDED
    assert parent.key.name in denied.message, denied.message

    async with over_http(child) as client:
        exhausted = await client.call_tool("budget_status", {})
    assert exhausted.is_error
    assert "budget_status: STOP: spend cap exhausted, do not retry" in text(exhausted)
    assert f"{parent.key.name} spend/calendar_day" in text(exhausted)


async def test_freeze_and_revoke_reach_descendants_only_and_stop_every_tool(
    over_http: Connect, admin_vault: VaultClient, system: System, tenant: str
) -> None:
    parent = await mint_parent(admin_vault, tenant)
    async with over_http(parent.secret) as client:
        child = data(await client.call_tool("mint_child_key", {"spec": {
            "agent_id": "helper", "scopes": ["api.call"]}}))  # fmt: skip
        key_id = child["key"].rsplit("/", 1)[1]
        frozen = data(await client.call_tool("freeze_child_key", {"key": key_id, "reason": "loop"}))
        assert frozen["state"] == "FROZEN"
        assert (await spend(system, child["secret"], 1)).reason == V.DENY_REASON_KEY_FROZEN
        own = await client.call_tool("revoke_child_key", {"key": parent.key.name, "reason": "x"})
        assert own.is_error and "only its descendants" in text(own)
        no_reason = await client.call_tool("freeze_child_key", {"key": key_id, "reason": ""})
        assert no_reason.is_error
        revoked = data(await client.call_tool("revoke_child_key", {"key": child["key"],
                                                                     "reason": "done"}))  # fmt: skip
        assert revoked["state"] == "REVOKED"

    async with over_http(child["secret"]) as client:  # a child cannot act on its parent
        upward = await client.call_tool("freeze_child_key", {"key": parent.key.name,
                                                              "reason": "mutiny"})  # fmt: skip
        assert upward.is_error and "STOP" in text(upward)  # it is revoked anyway

    await admin_vault.revoke_key(parent.key.name, reason="incident")
    async with over_http(parent.secret) as client:
        for tool, arguments in (
            ("budget_status", {}),
            ("spend_report", {}),
            ("mint_child_key", {"spec": {"agent_id": "x", "scopes": ["api.call"]}}),
            ("freeze_child_key", {"key": key_id, "reason": "r"}),
            ("revoke_child_key", {"key": key_id, "reason": "r"}),
            ("request_approval", {"ask": {"quota": "run", "amount": "1", "currency": "USD",
                                          "reason": "r", "agent_run_id": "x"}}),
            ("approval_status", {"approval": f"tenants/{tenant}/approvals/ap_x"}),
        ):  # fmt: skip
            result = await client.call_tool(tool, arguments)
            assert result.is_error and f"{tool}: STOP: " in text(result), (tool, text(result))


async def test_a_stopped_agent_asks_a_human_and_goes_on_once_approved(
    over_http: Connect, admin_vault: VaultClient, system: System, tenant: str
) -> None:
    parent = await mint_parent(admin_vault, tenant, spend_caps=[day_cap(1_000_000)])
    assert (await spend(system, parent.secret, 1_000_000)).decision == V.DECISION_ALLOW
    assert (await spend(system, parent.secret, 500_000)).reason == V.DENY_REASON_SPEND_CAP_EXCEEDED
    async with over_http(parent.secret) as client:
        asked = data(await client.call_tool("request_approval", {"ask": {
            "quota": "spend/calendar_day", "amount": "0.50", "currency": "USD",
            "reason": "one more report for the customer"}}))  # fmt: skip
        assert asked["state"] == "PENDING" and asked["amount"] == "0.500000 USD"
        await admin_vault.approve_approval(asked["approval"], reason="fine")
        status = data(await client.call_tool("approval_status", {"approval": asked["approval"]}))
        bad = await client.call_tool("request_approval", {"ask": {
            "quota": "spend/forever", "amount": "1", "currency": "USD", "reason": "x"}})  # fmt: skip
    assert status["state"] == "APPROVED" and status["granted"] == "0.500000 USD"
    assert (await spend(system, parent.secret, 500_000)).decision == V.DECISION_ALLOW
    assert bad.is_error


async def test_spend_report_and_budget_over_stdio(
    over_stdio: Connect, admin_vault: VaultClient, system: System, tenant: str
) -> None:
    parent = await mint_parent(admin_vault, tenant, spend_caps=[day_cap(5_000_000)])
    allowed = await spend(system, parent.secret, 250_000)
    assert allowed.decision == V.DECISION_ALLOW
    async with over_stdio(parent.secret) as client:
        status = data(await client.call_tool("budget_status", {}))
        report = data(await client.call_tool("spend_report", {"recent": 5}))
    assert status["limits"][0]["used"] == "0.250000 USD"  # the open hold counts
    assert report["subject"] == parent.key.name and report["spent"] == []


async def test_http_without_a_vault_key_is_401(mcp_url: str) -> None:
    async with httpx2.AsyncClient() as http:
        answer = await http.post(mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHENTICATED"


def test_keyleash_mcp_without_a_vault_key_exits_2_in_one_line() -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "KEYLEASH_TOKEN": "kl_admin_not_a_vault_key"}
    done = subprocess.run([sys.executable, "-m", "keyleash_ops.cli", "mcp"], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "KEYLEASH_TOKEN must hold this agent's vault key" in done.stderr
