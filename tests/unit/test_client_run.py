"""agent_run(), request building and client configuration, without a server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry import baggage

from keyleash.client import SyncVaultClient, VaultClient, agent_run, current_run_id
from keyleash.client._base import run_stamper
from keyleash.client._transport import build_request
from keyleash.client.config import Connection, env_settings, load_pem
from keyleash.client.guard import to_money
from keyleash.client.run import call_metadata
from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2


def test_agent_run_sets_contextvar_baggage_and_metadata() -> None:
    assert current_run_id() is None
    with agent_run("run-1") as run_id:
        assert run_id == "run-1" == current_run_id()
        assert baggage.get_baggage("agent_run_id") == "run-1"
        metadata = dict(call_metadata("tok"))
        assert metadata["authorization"] == "Bearer tok"
        assert metadata["x-agent-run-id"] == "run-1"
        assert "agent_run_id=run-1" in metadata["baggage"]
        with agent_run("run-2"):
            assert current_run_id() == "run-2"
        assert current_run_id() == "run-1"
    assert current_run_id() is None and baggage.get_baggage("agent_run_id") is None
    assert "x-agent-run-id" not in dict(call_metadata(None))
    with agent_run() as generated:
        assert generated.startswith("run-") and len(generated) > 10


async def test_agent_run_follows_tasks_and_threads() -> None:
    async with agent_run("run-async"):
        in_task = await asyncio.ensure_future(asyncio.sleep(0, result=current_run_id()))
        in_thread = await asyncio.to_thread(current_run_id)
    assert in_task == in_thread == "run-async"
    assert current_run_id() is None


def test_stamping_fills_only_empty_fields_and_never_mutates_the_callers_message() -> None:
    mine = metering_pb2.ChargeRequest(key_id="k")
    with agent_run("run-9"):
        stamped = run_stamper(request_id=True)(mine)
        kept = run_stamper()(metering_pb2.ChargeRequest(agent_run_id="explicit"))
    assert mine.agent_run_id == "" and mine.request_id == ""
    assert stamped.agent_run_id == "run-9" and len(stamped.request_id) == 32
    assert kept.agent_run_id == "explicit"
    unchanged = vault_pb2.GetKeyRequest(name="n")
    assert run_stamper()(unchanged) is unchanged  # no agent_run_id field: nothing to do


def test_build_request_from_message_or_fields() -> None:
    given = vault_pb2.GetKeyRequest(name="n")
    built = build_request(vault_pb2.GetKeyRequest, given, {})
    assert built == given and built is not given
    assert build_request(vault_pb2.GetKeyRequest, None, {"name": "m"}).name == "m"
    with pytest.raises(TypeError):
        build_request(vault_pb2.GetKeyRequest, given, {"name": "m"})
    assert to_money(("USD", 5)) == to_money(to_money(("USD", 5)))


def test_connection_settings_from_arguments_and_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")
    assert load_pem(str(ca)) == ca.read_bytes() == load_pem(ca.read_text()) == load_pem(ca)
    env = {
        "KEYLEASH_VAULT_TARGET": "vault:50051",
        "KEYLEASH_METERING_TARGET": "metering:50052",
        "KEYLEASH_TOKEN": "secret",
        "KEYLEASH_TLS_CA": str(ca),
    }
    settings = env_settings("KEYLEASH_VAULT_TARGET", env)
    assert settings == {
        "target": "vault:50051", "token": "secret", "root_certificates": str(ca), "tls": True,
    }  # fmt: skip
    assert env_settings(
        "KEYLEASH_METERING_TARGET", {"KEYLEASH_METERING_TARGET": "m:1", "KEYLEASH_TLS": "1"}
    )["tls"]
    # Unset: the local ports `keyleash up` serves on, as the CLI does.
    assert env_settings("KEYLEASH_VAULT_TARGET", {})["target"] == "localhost:50051"
    assert env_settings("KEYLEASH_METERING_TARGET", {})["target"] == "localhost:50052"
    with pytest.raises(ValueError, match="KEYLEASH_OTHER_TARGET"):
        env_settings("KEYLEASH_OTHER_TARGET", {})
    plain = Connection.resolve("x:1", env={"KEYLEASH_TOKEN": "from-env"})
    assert (plain.tls, plain.token, plain.credentials()) == (False, "from-env", None)
    assert Connection.resolve("x:1", token="arg", env={"KEYLEASH_TOKEN": "e"}).token == "arg"
    tls = Connection.resolve("x:1", root_certificates=ca.read_bytes(), env={})
    assert tls.tls and tls.root_certificates == ca.read_bytes()
    with pytest.raises(ValueError, match="tls=False"):
        Connection.resolve("x:1", tls=False, root_certificates=b"pem", env={})


async def test_clients_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYLEASH_VAULT_TARGET", "127.0.0.1:1")
    monkeypatch.setenv("KEYLEASH_TOKEN", "env-token")
    async with VaultClient.from_env(timeout=1.0) as vault:
        assert (vault.target, vault.token) == ("127.0.0.1:1", "env-token")
    with SyncVaultClient.from_env(token="override") as sync_vault:
        assert sync_vault.token == "override"
    with pytest.raises(ValueError, match="target"):
        VaultClient()
