"""The gateway's container wiring: the compose service and the image (no Docker engine here, so
the files are checked as text: names the API contract fixes, variables the gateway reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyleash_core.settings import SettingsError
from keyleash_gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_the_gateway_against_the_services() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    service = compose.split("\n  gateway:\n", 1)[1].split("\nvolumes:", 1)[0]
    for line in (
        'command: ["python", "-m", "keyleash_gateway"]',
        "KEYLEASH_GATEWAY_LISTEN: 0.0.0.0:8080",
        "KEYLEASH_VAULT_TARGET: vault:50051",
        "KEYLEASH_METERING_TARGET: metering:50052",
        '- "8080:8080"',
    ):
        assert line in service, line
    assert "KEYLEASH_SERVICE_TOKEN: ${KEYLEASH_SERVICE_TOKEN:?" in service
    assert "KEYLEASH_SECRETS_KEY: ${KEYLEASH_SECRETS_KEY:-}" in compose
    assert "COPY keyleash_gateway ./keyleash_gateway" in (ROOT / "Dockerfile").read_text()


def test_settings_name_the_missing_variable() -> None:
    env = {
        "KEYLEASH_VAULT_TARGET": "v:1",
        "KEYLEASH_METERING_TARGET": "m:2",
        "KEYLEASH_SERVICE_TOKEN": "t",
    }
    settings = GatewaySettings.from_env(env)
    assert settings.listen == "0.0.0.0:8080" and settings.max_body_bytes == 1024 * 1024
    for name in env:
        with pytest.raises(SettingsError, match=name):
            GatewaySettings.from_env({k: v for k, v in env.items() if k != name})
    with pytest.raises(SettingsError, match="KEYLEASH_GATEWAY_LISTEN"):
        GatewaySettings.from_env(env | {"KEYLEASH_GATEWAY_LISTEN": "nope"})
