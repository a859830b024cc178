"""`keyleash up` runs the gateway too, with a development secrets key kept in the state dir."""

from __future__ import annotations

import json
import re
import stat
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from tests.integration.test_keyleash_up import keyleash_up


@pytest.mark.timeout(120)
def test_up_serves_the_gateway_and_connections(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with keyleash_up(state, tmp_path) as up:
        banner = up.banner()
        match = re.search(r"gateway listening on (\S+:\d+)$", banner.text, re.MULTILINE)
        assert match, banner.text
        gateway = f"http://{match.group(1)}"
        with urllib.request.urlopen(f"{gateway}/healthz", timeout=10) as response:
            assert json.load(response) == {"status": "ok"}
        request = urllib.request.Request(
            f"{gateway}/stripe/v1/charges", data=b"amount=1&currency=usd", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        refused.value.close()  # an HTTPError holds the open response
        with grpc.insecure_channel(banner.vault) as channel:
            stub = vault_pb2_grpc.VaultServiceStub(channel)
            created = stub.CreateConnection(
                vault_pb2.CreateConnectionRequest(
                    tenant_id="acme",
                    connection=vault_pb2.Connection(vendor="stripe"),
                    secret="sk_test_up",
                ),
                metadata=(("authorization", f"Bearer {banner.admin_token}"),),
                timeout=10,
            )
        assert created.name.startswith("tenants/acme/connections/")
    key_file = state / "secrets_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) == 44
