"""Attribute constraints: exact values, prefix ("+1*") and suffix ("*@acme.com") patterns, and
multi-valued attributes (one value per line, each must be allowed)."""

from __future__ import annotations

import pytest

from vault_service.domain.checks import constraint_met

CASES = [
    # allowed values,            attribute value,                         met
    (["usd"], "usd", True),
    (["usd"], "usdx", False),
    (["usd"], None, False),
    (["+1*"], "+14155550100", True),
    (["+1*"], "+447700900000", False),
    (["+1*", "+44*"], "+447700900000", True),
    (["*@acme.com"], "ops@acme.com", True),
    (["*@acme.com"], "ops@acme.com.evil.io", False),
    (["*@acme.com"], "a@acme.com\nb@acme.com", True),
    (["*@acme.com"], "a@acme.com\nb@other.io", False),
    (["*"], "*", True),
    (["*"], "anything", False),
    (["acme.com", "beta.io"], "acme.com\nbeta.io", True),
]


@pytest.mark.parametrize(("allowed", "value", "met"), CASES)
def test_constraint_met(allowed: list[str], value: str | None, met: bool) -> None:
    assert constraint_met(allowed, value) is met
