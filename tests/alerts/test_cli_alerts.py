"""`keyleash alerts subscribe|list|deliveries|delete` against the session's servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from keyleash.vault.v1 import vault_pb2
from keyleash_ops.cli import main
from tests.alerts.receiver import Receiver, receiving, until
from tests.conftest import ADMIN_TOKEN, System, bearer


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


async def test_alerts_cli_subscribe_list_deliveries_delete(
    capsys: pytest.CaptureFixture[str],
    system: System,
    vault: object,
    receiver: Receiver,
    tenant: str,
) -> None:
    async def kl(*argv: str) -> tuple[int, str, str]:
        flags = ["--metering", system.metering_address, "--token", ADMIN_TOKEN]
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, *flags])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await kl("alerts", "subscribe", "--tenant", tenant, "--url", receiver.url,
                              "--event", "key.frozen", "--json")  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    secret, name = created["signing_secret"], created["subscription"]["name"]
    assert secret.startswith("whsec_")
    code, out, _ = await kl("alerts", "list", "--tenant", tenant)
    assert code == 0 and name in out and secret not in out

    minted = await vault.MintKey(  # type: ignore[attr-defined]
        vault_pb2.MintKeyRequest(tenant_id=tenant, agent_id="bot", scopes=["api.call"]),
        metadata=bearer(ADMIN_TOKEN), timeout=10,
    )  # fmt: skip
    await vault.FreezeKey(  # type: ignore[attr-defined]
        vault_pb2.FreezeKeyRequest(name=minted.key.name, reason="cli test"),
        metadata=bearer(ADMIN_TOKEN), timeout=10,
    )  # fmt: skip

    async def delivered() -> bool:
        code, out, _ = await kl("alerts", "deliveries", "--tenant", tenant, "--state", "delivered")
        return code == 0 and "key.frozen" in out

    await until(delivered, what="a delivered row in the CLI")
    code, out, err = await kl("alerts", "subscribe", "--tenant", tenant, "--url", receiver.url,
                              "--event", "key.melted")  # fmt: skip
    assert code != 0 and "subscription.event_types" in err
    code, out, _ = await kl("alerts", "delete", name)
    assert code == 0 and name in out
