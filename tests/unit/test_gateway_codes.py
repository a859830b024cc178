"""Every code the gateway answers with is a contract value: a DenyReason, or a GatewayError the
README documents."""

from __future__ import annotations

from pathlib import Path

from keyleash_gateway.answers import GatewayError

README = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")


def test_every_gateway_error_code_is_documented() -> None:
    missing = [code.value for code in GatewayError if f"`{code.value}`" not in README]
    assert missing == []
