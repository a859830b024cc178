"""What Metering tells its span and its metrics about the events an RPC recorded."""

from __future__ import annotations

from collections.abc import Sequence

from keyleash_core.telemetry import CHARGED_MICROS, CHARGES, RESERVATIONS_OPEN, annotate
from metering_service.usecases.record_spend import Recorded


def count_recorded(recorded: Sequence[Recorded]) -> None:
    """The span's attributes (of the last event) and the charge metrics of these events,
    summed per tenant and currency: an add costs ~17 µs with the Prometheus exporter on,
    so a batch adds once per label set, not once per event."""
    if not recorded:
        return
    last = recorded[-1].event
    annotate(tenant_id=last.tenant_id, key_id=last.key_id, agent_run_id=last.agent_run_id)
    totals: dict[tuple[str, str], list[int]] = {}
    settled_holds = 0
    for one in recorded:
        if one.duplicate:
            continue
        event = one.event
        total = totals.setdefault((event.tenant_id, event.amount.currency), [0, 0])
        total[0] += 1
        total[1] += max(event.amount.micros, 0)  # a counter: refunds are not subtracted
        settled_holds += 1 if event.reservation_id else 0
    for (tenant, currency), (events, micros) in totals.items():
        labels = {"tenant": tenant, "currency": currency}
        CHARGES.add(events, labels)
        CHARGED_MICROS.add(micros, labels)
    if settled_holds:
        RESERVATIONS_OPEN.add(-settled_holds)
