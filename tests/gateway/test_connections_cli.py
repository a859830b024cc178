"""`keyleash connections add|list|rotate|delete` against the real vault: the secret comes from
stdin and is never printed."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from keyleash.client import ConnectionsClient, VaultClient
from keyleash_ops.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.gateway.conftest import SealedSystem

SECRET = "sk_test_from_stdin_0123456789"


async def _kl(
    sealed_system: SealedSystem,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = await asyncio.to_thread(
        main, [*argv, "--vault", sealed_system.vault_address, "--token", ADMIN_TOKEN]
    )
    out, err = capsys.readouterr()
    return code, out, err


async def test_add_list_rotate_delete(
    sealed_system: SealedSystem,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    admin_vault: VaultClient,
    service_connections: ConnectionsClient,
    tenant: str,
) -> None:
    code, out, err = await _kl(
        sealed_system,
        capsys,
        monkeypatch,
        "connections",
        "add",
        "--tenant",
        tenant,
        "--vendor",
        "stripe",
        "--id",
        "main",
        "--json",
        stdin=SECRET + "\n",
    )
    assert code == 0, err
    assert json.loads(out)["name"] == f"tenants/{tenant}/connections/main"
    name = f"tenants/{tenant}/connections/main"
    code, out, _ = await _kl(
        sealed_system, capsys, monkeypatch, "connections", "list", "--tenant", tenant
    )
    assert code == 0 and name in out and "stripe" in out
    key = (
        await admin_vault.mint_key(tenant_id=tenant, agent_id="a", scopes=["stripe.charges.write"])
    ).secret
    assert (await service_connections.access_connection_secret(key, "stripe")).secret == SECRET
    code, out, _ = await _kl(
        sealed_system, capsys, monkeypatch, "connections", "rotate", name, stdin="sk_test_rotated\n"
    )
    assert code == 0 and "rotated:" in out
    assert (
        await service_connections.access_connection_secret(key, "stripe")
    ).secret == "sk_test_rotated"
    code, out, _ = await _kl(sealed_system, capsys, monkeypatch, "connections", "delete", name)
    assert code == 0 and "erased" in out
    code, _, err = await _kl(
        sealed_system, capsys, monkeypatch, "connections", "rotate", name, stdin="x\n"
    )
    assert code != 0 and "CONNECTION_NOT_FOUND" in err
    assert SECRET not in out + err


async def test_add_without_a_secret_is_a_usage_error(
    sealed_system: SealedSystem,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tenant: str,
) -> None:
    code, out, err = await _kl(
        sealed_system,
        capsys,
        monkeypatch,
        "connections",
        "add",
        "--tenant",
        tenant,
        "--vendor",
        "stripe",
        stdin="",
    )
    assert code == 2 and "no secret on stdin" in err and out == ""
