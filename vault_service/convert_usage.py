"""Proto of GetKeyUsage and ListKeyEvents answers (kept apart from convert.py, the request and
key conversions)."""

from __future__ import annotations

from typing import Any

from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from vault_service.convert import key_to_proto
from vault_service.usecases.key_usage import KeyUsageView


def usage_to_proto(views: list[KeyUsageView], now_ms: int) -> vault_pb2.GetKeyUsageResponse:
    out = vault_pb2.GetKeyUsageResponse()
    out.read_time.FromMilliseconds(now_ms)
    for view in views:
        usage = out.keys.add(name=view.record.name, state=key_to_proto(view.record, now_ms).state)
        for q in view.quotas:
            status = usage.quotas.add(
                subject=q.subject, quota=q.quota, unit=q.unit, limit=q.limit, used=q.used,
                remaining=q.remaining,
            )  # fmt: skip
            if q.reset_ms:
                status.reset_time.FromMilliseconds(q.reset_ms)
        for hold in view.holds:
            placed = usage.open_holds.add(
                reservation_id=hold.reservation_id,
                amount=money_pb2.Money(currency_code=hold.currency, micros=hold.micros),
                agent_run_id=hold.agent_run_id,
                decision_id=hold.decision_id,
            )
            placed.create_time.FromDatetime(hold.decision_time)
    return out


def key_event_to_proto(row: Any) -> vault_pb2.KeyEvent:
    event = vault_pb2.KeyEvent(
        action=row["action"],
        actor=row["actor"],
        reason=row["reason"],
        details_json=row["details"],
        event_id=row["event_id"],
    )
    event.event_time.FromDatetime(row["event_time"])
    return event
