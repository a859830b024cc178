"""The README's Python snippet runs as written against a started system (issue 14, item 17);
`from_env()` defaults to the ports `keyleash up` uses."""

from __future__ import annotations

import re
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

from keyleash.client import MeteringClient, SyncMeteringClient, SyncVaultClient, VaultClient
from keyleash.client.errors import Unavailable
from keyleash.client.retry import NO_RETRY
from keyleash.metering.v1 import metering_pb2 as P
from keyleash.vault.v1 import vault_pb2 as V
from tests.conftest import ADMIN_TOKEN, System

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)


async def test_readme_python_snippet_runs(
    system: System, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    snippet = next(b for b in python_blocks() if "guard(" in b)
    monkeypatch.setenv("KEYLEASH_VAULT_TARGET", system.vault_address)
    monkeypatch.setenv("KEYLEASH_METERING_TARGET", system.metering_address)
    monkeypatch.delenv("KEYLEASH_TOKEN", raising=False)
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as admin:
        minted = await admin.mint_key(
            tenant_id=tenant, agent_id="billing-bot", scopes=["stripe.charges.write"],
            policy=V.Policy(spend_caps=[V.SpendCap(
                limit={"currency_code": "USD", "micros": 5_000_000},
                window=V.SpendCap.WINDOW_CALENDAR_DAY,
            )]),
        )  # fmt: skip

    async def pay() -> int:
        return 1_500_000

    # The snippet's free names: the key's secret, the step's id and the vendor call.
    names: dict[str, Any] = {"secret": minted.secret, "step_id": f"{tenant}-step-1", "pay": pay}
    exec(
        compile("async def snippet():\n" + textwrap.indent(snippet, "    "), "README", "exec"),
        names,
    )
    await names["snippet"]()

    async with MeteringClient(system.metering_address, token=ADMIN_TOKEN) as metering:
        page = await metering.list_billing_events(
            P.ListBillingEventsRequest(filter=P.BillingEventFilter(tenant_id=tenant))
        )
    assert [(e.amount.micros, e.agent_run_id) for e in page.events] == [(1_500_000, "run-42")]


def test_every_python_block_is_one_the_tests_run() -> None:
    """A new block must come with a test: each is either the guard() snippet or the gateway's
    SDK set-up (both run below)."""
    blocks = python_blocks()
    assert len(blocks) == 3
    assert sum("guard(" in b for b in blocks) == 1
    assert sum("base_addresses" in b for b in blocks) == 1
    assert sum("Webhook(signing_secret)" in b for b in blocks) == 1


def test_readme_webhook_verification_accepts_a_signed_alert_and_refuses_a_forged_one() -> None:
    import base64
    import datetime
    import secrets

    from standardwebhooks import Webhook, WebhookVerificationError

    snippet = next(b for b in python_blocks() if "Webhook(signing_secret)" in b)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    body = '{"type": "key.frozen", "data": {}}'
    now = datetime.datetime.now(tz=datetime.UTC)
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("evt_1", now, body),
    }
    names: dict[str, Any] = {
        "signing_secret": secret,
        "request_body": body,
        "request_headers": headers,
    }
    exec(compile(snippet, "README", "exec"), names)
    assert names["payload"] == {"type": "key.frozen", "data": {}}
    forged = {**names, "request_body": body.replace("frozen", "revoked")}
    with pytest.raises(WebhookVerificationError):
        exec(compile(snippet, "README", "exec"), forged)


def test_readme_gateway_sdk_setup_runs_and_points_every_sdk_at_the_gateway() -> None:
    import anthropic
    import openai
    import resend
    import stripe
    import twilio.rest

    snippet = next(b for b in python_blocks() if "base_addresses" in b)
    names: dict[str, Any] = {
        "stripe": stripe,
        "resend": resend,
        "twilio": twilio,
        "openai": openai,
        "anthropic": anthropic,
        "vault_key": "vk_example",
        "account_sid": "AC" + "0" * 32,
    }
    saved = resend.api_key, resend.api_url
    try:
        exec(compile(snippet, "README", "exec"), names)
        assert resend.api_url == "http://localhost:8080/resend"
        assert names["twilio_client"].api.base_url == "http://localhost:8080/twilio"
        assert str(names["openai_client"].base_url) == "http://localhost:8080/openai/v1/"
        assert str(names["claude"].base_url) == "http://localhost:8080/anthropic/"
        names["openai_client"].close()
        names["claude"].close()
    finally:
        resend.api_key, resend.api_url = saved


def test_from_env_defaults_to_the_local_ports() -> None:
    with SyncVaultClient.from_env({"KEYLEASH_VAULT_TARGET": " "}) as vault:
        assert vault.target == "localhost:50051"
    with SyncMeteringClient.from_env({}) as metering:
        assert metering.target == "localhost:50052"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_nothing_listening_names_the_address_and_the_variable() -> None:
    target = f"127.0.0.1:{_closed_port()}"
    async with MeteringClient.from_env(
        {"KEYLEASH_METERING_TARGET": target}, timeout=5, retry=NO_RETRY
    ) as metering:
        with pytest.raises(Unavailable) as caught:
            await metering.get_tenant("acme")
    message = str(caught.value)
    assert f"nothing answered at {target}" in message and "KEYLEASH_METERING_TARGET" in message
    assert "localhost:50052" in message  # the default from_env() would use
    with SyncVaultClient.from_env(
        {"KEYLEASH_VAULT_TARGET": target}, timeout=5, retry=NO_RETRY
    ) as vault:
        with pytest.raises(Unavailable) as blocking:
            vault.validate_key("vk_not_a_real_key")
    assert "KEYLEASH_VAULT_TARGET" in str(blocking.value) and "localhost:50051" in str(
        blocking.value
    )
