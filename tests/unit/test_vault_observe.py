"""The vault's decision metrics: a batch adds once per label set, one decision as before."""

from __future__ import annotations

from typing import Any

import pytest

from keyleash_core.reasons import DenyReason
from vault_service import servicer
from vault_service.usecases.authorize import Decision


class _Instrument:
    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, Any] | None]] = []

    def add(self, amount: float, attributes: dict[str, Any] | None = None) -> None:
        self.calls.append((amount, attributes))

    record = add


@pytest.fixture
def instruments(monkeypatch: pytest.MonkeyPatch) -> dict[str, _Instrument]:
    found = {
        name: _Instrument() for name in ("DECISIONS", "AUTHORIZE_SECONDS", "RESERVATIONS_OPEN")
    }
    for name, instrument in found.items():
        monkeypatch.setattr(servicer, name, instrument)
    return found


def test_a_batch_counts_each_verdict_once(instruments: dict[str, _Instrument]) -> None:
    allowed = Decision(True, reservation_id="r_1")
    limited = Decision(False, DenyReason.RATE_LIMITED)
    servicer._observe([allowed] * 60 + [limited] * 4, "run-1", 0.002)
    assert sorted(instruments["DECISIONS"].calls, key=str) == sorted(
        [(60, {"decision": "allow", "reason": "none"}),
         (4, {"decision": "deny", "reason": "RATE_LIMITED"})],
        key=str,
    )  # fmt: skip
    assert sorted(instruments["AUTHORIZE_SECONDS"].calls, key=str) == sorted(
        [(0.002, {"decision": "allow"}), (0.002, {"decision": "deny"})], key=str
    )
    assert instruments["RESERVATIONS_OPEN"].calls == [(60, None)]


def test_one_decision_is_observed_as_before(instruments: dict[str, _Instrument]) -> None:
    servicer._observe([Decision(False, DenyReason.KEY_FROZEN)], "", 0.001)
    assert instruments["DECISIONS"].calls == [(1, {"decision": "deny", "reason": "KEY_FROZEN"})]
    assert instruments["AUTHORIZE_SECONDS"].calls == [(0.001, {"decision": "deny"})]
    assert instruments["RESERVATIONS_OPEN"].calls == []
