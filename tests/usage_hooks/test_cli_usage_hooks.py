"""`keyleash usage-hooks secret create|rotate` against the session's servers, then a delivery
signed with the printed secret is taken by the receiver."""

from __future__ import annotations

import asyncio
import json

import pytest

from keyleash_ops.cli import main
from tests.conftest import ADMIN_TOKEN, System
from tests.usage_hooks.conftest import Receiver, batch, post, signed


async def test_secret_create_then_rotate_prints_a_working_secret_once(
    capsys: pytest.CaptureFixture[str], system: System, receiver: Receiver, tenant: str
) -> None:
    async def kl(*argv: str) -> tuple[int, str, str]:
        flags = ["--metering", system.metering_address, "--token", ADMIN_TOKEN]
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, *flags])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await kl("usage-hooks", "secret", "create", "--tenant", tenant, "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["signing_secret"].startswith("whsec_")
    assert created["secret"]["name"] == f"tenants/{tenant}/usageWebhookSecret"
    code, out, err = await kl("usage-hooks", "secret", "create", "--tenant", tenant)
    assert code != 0 and "rotate" in err and "whsec_" not in out + err
    code, out, err = await kl("usage-hooks", "secret", "rotate", "--tenant", tenant)
    assert code == 0, err
    rotated = out.split("signing secret (shown only now): ")[1].split()[0]
    assert rotated.startswith("whsec_") and rotated != created["signing_secret"]
    body = batch([{"id": "e1", "key_id": "k_nope", "model": "gpt-4o"}])
    status, answer = await post(receiver.url, tenant, body, signed(rotated, body))
    assert status == 422 and answer["error"]["code"] == "EVENT_REJECTED"  # verified, key unknown
    code, _, err = await kl("usage-hooks", "secret", "rotate", "--tenant", "never-" + tenant)
    assert code != 0 and "create one" in err
