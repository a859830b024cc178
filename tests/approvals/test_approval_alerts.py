"""approval.requested / approval.decided alerts on the session's servers (their metering process
runs the alert scanner and dispatcher), and the one-click link the dispatcher mints for a
request, redeemed at the approvals endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from keyleash_approvals.app import create_app
from keyleash_approvals.settings import ApprovalsSettings
from metering_service.alerts import domain
from metering_service.alerts.dispatcher import signed_request
from metering_service.alerts.store import ClaimedDelivery, DeliveryRow
from tests.alerts.receiver import Receiver, receiving, subscribe, until
from tests.approvals.approval_helpers import ALLOW, DENY, mint_capped, spend
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN, System, bearer
from tests.integration.vault_helpers import PEPPER

TYPES = ["approval.requested", "approval.decided"]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


@pytest.fixture
async def session_links_url(system: System) -> AsyncIterator[str]:
    settings = ApprovalsSettings(
        listen="127.0.0.1:0", vault_target=system.vault_address, service_token=SERVICE_TOKEN
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _as_claimed(payload: Any, event_id: str, fmt: str) -> ClaimedDelivery:
    now = datetime.now(UTC)
    row = DeliveryRow(1, "", "", event_id, payload["type"], json.dumps(payload), "pending", 0,
                      0, "", now, None)  # fmt: skip
    return ClaimedDelivery(row, "http://unused", b"", fmt)


async def test_approval_alerts_carry_links_that_approve_once(
    vault: Any, metering: Any, receiver: Receiver, tenant: str, session_links_url: str
) -> None:
    await subscribe(metering, bearer(ADMIN_TOKEN), tenant, receiver.url, TYPES)
    key = await mint_capped(vault, tenant, "10")
    assert (await spend(vault, key.secret, "10")).decision == ALLOW
    denied = await spend(vault, key.secret, "3")
    assert denied.decision == DENY and denied.approval

    [asked] = await until(lambda: receiver.of_type("approval.requested"), what="the request")
    data = asked.payload["data"]
    assert (data["approval"], data["key_id"], data["quota"]) == (
        denied.approval, key.key.key_id, "spend/calendar_day",
    )  # fmt: skip
    assert (data["amount_micros"], data["currency_code"]) == (3_000_000, "USD")
    assert "approve_url" not in data  # the session's metering has no approvals URL

    # The dispatcher of a metering configured with KEYLEASH_APPROVALS_PUBLIC_URL adds the links
    # to this very payload when it sends it (standard and Slack alike).
    claimed = _as_claimed(asked.payload, asked.webhook_id, "standard")
    body, _headers = signed_request(claimed, "whsec_" + "A" * 32, datetime.now(UTC),
                                    session_links_url, PEPPER)  # fmt: skip
    links = json.loads(body)["data"]
    assert links["approve_url"].startswith(f"{session_links_url}/approvals/approve?token=")
    again, _ = signed_request(claimed, "whsec_" + "A" * 32, datetime.now(UTC),
                              session_links_url, PEPPER)  # fmt: skip
    assert json.loads(again)["data"]["approve_url"] == links["approve_url"]  # stable on retry
    slack, _ = signed_request(_as_claimed(asked.payload, asked.webhook_id, "slack"),
                              "whsec_" + "A" * 32, datetime.now(UTC), session_links_url, PEPPER)  # fmt: skip
    text = json.loads(slack)["text"]
    assert "Approval requested" in text and "|Approve>" in text and "|Deny>" in text

    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as http:
        async with http.post(links["approve_url"]) as answer:
            assert answer.status == 200, await answer.text()
        async with http.post(links["approve_url"]) as replay:
            assert replay.status == 403
    assert (await spend(vault, key.secret, "3")).decision == ALLOW

    [decided] = await until(lambda: receiver.of_type("approval.decided"), what="the decision")
    outcome = decided.payload["data"]
    assert outcome["state"] == "approved" and outcome["actor"].startswith("link:")
    assert outcome["granted_micros"] == 3_000_000
    assert "Approval approved" in domain.slack_text(decided.payload)
