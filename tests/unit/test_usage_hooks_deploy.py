"""The usage webhook receiver's container wiring and settings (checked as text: no Docker
engine here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyleash_core.settings import SettingsError
from keyleash_usage_hooks.settings import UsageHooksSettings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_the_receiver_against_metering() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    service = compose.split("\n  usage-hooks:\n", 1)[1].split("\n\n", 1)[0]
    for line in (
        'command: ["python", "-m", "keyleash_usage_hooks"]',
        "KEYLEASH_USAGE_HOOKS_LISTEN: 0.0.0.0:8085",
        "KEYLEASH_METERING_TARGET: metering:50052",
        "KEYLEASH_VAULT_TARGET: vault:50051",
        "KEYLEASH_SERVICE_TOKEN: ${KEYLEASH_SERVICE_TOKEN:?",
        '- "8085:8085"',
    ):
        assert line in service, line
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY keyleash_usage_hooks ./keyleash_usage_hooks" in dockerfile
    assert "8085" in dockerfile.split("EXPOSE", 1)[1].splitlines()[0]


def test_settings_name_the_missing_variable() -> None:
    env = {
        "KEYLEASH_METERING_TARGET": "m:2",
        "KEYLEASH_VAULT_TARGET": "v:1",
        "KEYLEASH_SERVICE_TOKEN": "t",
    }
    settings = UsageHooksSettings.from_env(env)
    assert settings.listen == "0.0.0.0:8085" and settings.tolerance_seconds == 300
    for name in env:
        with pytest.raises(SettingsError, match=name):
            UsageHooksSettings.from_env({k: v for k, v in env.items() if k != name})
    with pytest.raises(SettingsError, match="KEYLEASH_USAGE_HOOKS_LISTEN"):
        UsageHooksSettings.from_env(env | {"KEYLEASH_USAGE_HOOKS_LISTEN": "nope"})
