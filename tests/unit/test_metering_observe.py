"""Metering's metrics for recorded events: one add per tenant and currency, not per event."""

from __future__ import annotations

from typing import Any

import pytest

from keyleash_core.money import Money
from metering_service import observe
from metering_service.domain.events import BillingEvent, Kind
from metering_service.usecases.record_spend import Recorded


class _Instrument:
    def __init__(self) -> None:
        self.adds: list[tuple[int, dict[str, Any] | None]] = []

    def add(self, amount: int, attributes: dict[str, Any] | None = None) -> None:
        self.adds.append((amount, attributes))


def _recorded(tenant: str, money: Money, *, duplicate: bool = False, hold: str = "") -> Recorded:
    event = BillingEvent(
        event_id="e", request_id="r", tenant_id=tenant, key_id="k", parent_key_id="",
        key_path=("k",), agent_id="a", kind=Kind.CHARGE, amount=money, occur_time_us=1,
        reservation_id=hold,
    )  # fmt: skip
    return Recorded(event, duplicate, None)


def test_a_batch_adds_once_per_tenant_and_currency(monkeypatch: pytest.MonkeyPatch) -> None:
    charges, micros, holds = _Instrument(), _Instrument(), _Instrument()
    monkeypatch.setattr(observe, "CHARGES", charges)
    monkeypatch.setattr(observe, "CHARGED_MICROS", micros)
    monkeypatch.setattr(observe, "RESERVATIONS_OPEN", holds)
    batch = [
        *(_recorded("acme", Money("USD", 1_000), hold="r_1") for _ in range(500)),
        _recorded("acme", Money("USD", 7), duplicate=True),  # recorded before: not again
        _recorded("acme", Money("USD", -300)),  # a refund: a counter does not go down
        _recorded("acme", Money("EUR", 5)),
        _recorded("beta", Money("USD", 2)),
    ]
    observe.count_recorded(batch)
    assert sorted(charges.adds, key=str) == sorted(
        [
            (501, {"tenant": "acme", "currency": "USD"}),
            (1, {"tenant": "acme", "currency": "EUR"}),
            (1, {"tenant": "beta", "currency": "USD"}),
        ],
        key=str,
    )
    assert sorted(micros.adds, key=str) == sorted(
        [
            (500_000, {"tenant": "acme", "currency": "USD"}),
            (5, {"tenant": "acme", "currency": "EUR"}),
            (2, {"tenant": "beta", "currency": "USD"}),
        ],
        key=str,
    )
    assert holds.adds == [(-500, None)]
    observe.count_recorded([])  # nothing recorded: nothing added
    assert len(charges.adds) == 3
