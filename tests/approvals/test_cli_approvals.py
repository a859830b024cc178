"""`keyleash approvals request|list|get|approve|deny` against the session's servers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from keyleash_ops.cli import main
from tests.approvals.approval_helpers import ALLOW, DENY, mint_capped, spend
from tests.conftest import ADMIN_TOKEN, System


async def test_approvals_cli_request_list_get_approve_deny(
    capsys: pytest.CaptureFixture[str], system: System, vault: Any, tenant: str
) -> None:
    async def kl(*argv: str, token: str = ADMIN_TOKEN) -> tuple[int, str, str]:
        capsys.readouterr()
        flags = ["--vault", system.vault_address, "--token", token]
        code = await asyncio.to_thread(main, [*argv, *flags])
        out, err = capsys.readouterr()
        return code, out, err

    key = await mint_capped(vault, tenant, "10", on_denial=False)
    await spend(vault, key.secret, "10")
    assert (await spend(vault, key.secret, "3")).decision == DENY

    code, out, err = await kl("approvals", "request", "--quota", "spend/calendar_day",
                              "--amount", "3USD", "--reason", "one more batch", "--json",
                              token=key.secret)  # fmt: skip
    assert code == 0, err
    name = json.loads(out)["name"]
    assert json.loads(out)["state"] == "STATE_PENDING"

    code, out, err = await kl("approvals", "list", "--tenant", tenant, "--state", "pending")
    assert code == 0, err
    assert name.rpartition("/")[2] in out and "one more batch" in out

    code, out, err = await kl("approvals", "approve", name, token=key.secret)
    assert code != 0 and "PERMISSION_DENIED" in err  # never the requesting key itself

    code, out, err = await kl("approvals", "approve", name, "--amount", "3.5USD", "--reason", "ok")
    assert code == 0, err
    assert "approved" in out and "3.500000 USD" in out
    assert (await spend(vault, key.secret, "3")).decision == ALLOW

    code, out, err = await kl("approvals", "get", name, "--json")
    assert code == 0 and json.loads(out)["decision_reason"] == "ok"

    code, out, err = await kl("approvals", "deny", name)
    assert code != 0 and "FAILED_PRECONDITION" in err  # decided once

    code, out, err = await kl("approvals", "request", "--key", key.key.key_id, "--quota",
                              "spend/calendar_day", "--amount", "1USD")  # fmt: skip
    assert code == 0, err
    second = next(line.split()[-1] for line in out.splitlines() if line.startswith("name:"))
    code, out, err = await kl("approvals", "deny", second, "--reason", "enough for today")
    assert code == 0 and "denied" in out


async def test_keys_flag_turns_approval_on_denial_on(
    capsys: pytest.CaptureFixture[str], system: System, vault: Any, tenant: str
) -> None:
    flags = ["--vault", system.vault_address, "--token", ADMIN_TOKEN]
    argv = ["keys", "mint", "--tenant", tenant, "--agent", "a", "--scope", "api.call",
            "--cap", "1USD/day", "--approval-on-denial", "on", "--json", *flags]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 0
    minted = json.loads(capsys.readouterr().out)
    assert minted["key"]["policy"]["approval_on_denial"] is True
    denied = await spend(vault, minted["secret"], "2")
    assert denied.decision == DENY and denied.approval
    name = minted["key"]["name"]
    argv = ["keys", "set-policy", name, "--approval-on-denial", "off", "--json", *flags]
    assert await asyncio.to_thread(main, argv) == 0
    assert "approval_on_denial" not in json.loads(capsys.readouterr().out)["policy"]
