"""`keyleash up` runs the usage webhook receiver too: a secret made over gRPC, then a signed
delivery posted to the address the banner names is recorded."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import grpc
import pytest

from keyleash.metering.v1 import metering_pb2, metering_pb2_grpc
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from tests.integration.test_keyleash_up import keyleash_up
from tests.usage_hooks.conftest import batch, signed, usage


@pytest.mark.timeout(120)
def test_up_serves_the_usage_webhook_receiver(tmp_path: Path) -> None:
    with keyleash_up(tmp_path / "state", tmp_path) as up:
        banner = up.banner()
        match = re.search(r"usage webhooks listening on (\S+:\d+) ", banner.text, re.MULTILINE)
        assert match, banner.text
        hooks = f"http://{match.group(1)}"
        admin = (("authorization", f"Bearer {banner.admin_token}"),)
        with grpc.insecure_channel(banner.metering) as channel:
            created = metering_pb2_grpc.MeteringServiceStub(channel).CreateUsageWebhookSecret(
                metering_pb2.CreateUsageWebhookSecretRequest(tenant_id="acme"),
                metadata=admin,
                timeout=10,
            )
        with grpc.insecure_channel(banner.vault) as channel:
            minted = vault_pb2_grpc.VaultServiceStub(channel).MintKey(
                vault_pb2.MintKeyRequest(tenant_id="acme", agent_id="bot"),
                metadata=admin,
                timeout=10,
            )
        body = batch([usage(minted.key.key_id, 1)])
        request = urllib.request.Request(
            f"{hooks}/v1/tenants/acme/usage-events",
            data=body,
            headers=signed(created.signing_secret, body),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        assert answer["accepted"] == 1
