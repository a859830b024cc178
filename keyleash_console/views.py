"""Pure helpers the pages render from: money text, the key tree, usage bars, the spend chart's
geometry, the run ledger's rows and its CSV. No I/O; the templates escape whatever these return.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from keyleash.metering.v1 import metering_pb2 as P
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V

MICROS = 1_000_000


def money_text(micros: int, currency: str) -> str:
    """ "12.50 USD" from 12_500_000 micros: at least two decimals, never a float."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS)
    digits = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits} {currency}".strip()


def money_of(money: money_pb2.Money) -> str:
    return money_text(money.micros, money.currency_code) if money.currency_code else "-"


def time_text(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return stamp.ToDatetime(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state_name(state: int) -> str:
    return V.Key.State.Name(state).removeprefix("STATE_").lower()


def reason_name(reason: int) -> str:
    return V.DenyReason.Name(reason).removeprefix("DENY_REASON_") if reason else ""


def decision_name(decision: int) -> str:
    return V.Decision.Name(decision).removeprefix("DECISION_")


def event_kind_name(kind: int) -> str:
    return P.BillingEvent.Kind.Name(kind).removeprefix("KIND_")


@dataclass(frozen=True)
class TreeRow:
    key: V.Key
    depth: int
    orphan: bool  # its parent is on another page (or gone)


def key_tree(keys: Sequence[V.Key]) -> list[TreeRow]:
    """The keys in depth-first order, each child under its parent, siblings oldest first."""
    by_id = {key.key_id: key for key in keys}
    children: dict[str, list[V.Key]] = {}
    roots: list[V.Key] = []
    for key in keys:
        if key.parent_key_id and key.parent_key_id in by_id:
            children.setdefault(key.parent_key_id, []).append(key)
        else:
            roots.append(key)
    rows: list[TreeRow] = []

    def visit(key: V.Key, depth: int) -> None:
        rows.append(TreeRow(key, depth, depth == 0 and bool(key.parent_key_id)))
        for child in sorted(children.get(key.key_id, []), key=_created):
            visit(child, depth + 1)

    for root in sorted(roots, key=_created):
        visit(root, 0)
    return rows


def _created(key: V.Key) -> tuple[int, int, str]:
    return (key.create_time.seconds, key.create_time.nanos, key.key_id)


@dataclass(frozen=True)
class UsageBar:
    subject: str
    quota: str
    used: str
    limit: str
    percent: int  # 0..100, the bar's width


def usage_bars(quotas: Iterable[V.QuotaStatus]) -> list[UsageBar]:
    bars = []
    for quota in quotas:
        percent = min(100, quota.used * 100 // quota.limit) if quota.limit > 0 else 100
        bars.append(
            UsageBar(
                quota.subject,
                quota.quota,
                _quantity(quota.used, quota.unit),
                _quantity(quota.limit, quota.unit),
                percent,
            )
        )
    return bars


def _quantity(amount: int, unit: str) -> str:
    return f"{amount} {unit}" if unit == "requests" else money_text(amount, unit)


@dataclass(frozen=True)
class ChartBar:
    x: int
    y: int
    width: int
    height: int
    label: str
    title: str


CHART_WIDTH, CHART_HEIGHT, CHART_BASE = 720, 200, 180


def chart_bars(points: Sequence[tuple[str, int]], currency: str) -> list[ChartBar]:
    """Geometry of a bar chart of (label, micros) points, drawn by an SVG template."""
    if not points:
        return []
    top = max(max(micros for _, micros in points), 1)
    slot = CHART_WIDTH // len(points)
    bars = []
    for index, (label, micros) in enumerate(points):
        height = max(micros, 0) * (CHART_BASE - 10) // top
        bars.append(
            ChartBar(
                x=index * slot + 2,
                y=CHART_BASE - height,
                width=max(slot - 4, 1),
                height=height,
                label=label,
                title=f"{label}: {money_text(micros, currency)}",
            )
        )
    return bars


@dataclass(frozen=True)
class LedgerRow:
    record: str  # "decision" or "billing"
    time: str
    record_id: str
    key_id: str
    what: str  # ALLOW/DENY (+ reason) or the billing kind
    currency: str
    estimated_micros: int | None  # what Authorize was told (decisions)
    amount_micros: int | None  # settled (decisions) or charged (billing events)
    vendor: str
    endpoint: str
    trace_id: str
    sort_key: tuple[int, int]

    @property
    def estimated(self) -> str:
        return _micros_text(self.estimated_micros, self.currency)

    @property
    def amount(self) -> str:
        return _micros_text(self.amount_micros, self.currency)


def _micros_text(micros: int | None, currency: str) -> str:
    return "-" if micros is None else money_text(micros, currency)


LEDGER_COLUMNS = (
    "record",
    "time",
    "id",
    "key_id",
    "what",
    "currency",
    "estimated_micros",
    "amount_micros",
    "vendor",
    "endpoint",
    "trace_id",
)


def ledger_rows(
    decisions: Iterable[V.Authorization], events: Iterable[P.BillingEvent]
) -> list[LedgerRow]:
    """Decisions and billing events of one run, merged in time order."""
    rows = [_decision_row(d) for d in decisions] + [_event_row(e) for e in events]
    return sorted(rows, key=lambda row: row.sort_key)


def _decision_row(item: V.Authorization) -> LedgerRow:
    what = decision_name(item.decision)
    if item.reason:
        what += f" {reason_name(item.reason)}"
    estimate = item.estimated_cost
    return LedgerRow(
        "decision",
        time_text(item.decision_time),
        item.decision_id,
        item.key_id,
        what,
        estimate.currency_code or item.settled_cost.currency_code,
        estimate.micros if estimate.currency_code else None,
        item.settled_cost.micros if item.settled_events else None,
        item.vendor,
        f"{item.method} {item.path}".strip(),
        item.trace_id,
        (item.decision_time.seconds, item.decision_time.nanos),
    )


def _event_row(event: P.BillingEvent) -> LedgerRow:
    return LedgerRow(
        "billing",
        time_text(event.occur_time),
        event.event_id,
        event.key_id,
        event_kind_name(event.kind),
        event.amount.currency_code,
        None,
        event.amount.micros,
        event.vendor,
        event.endpoint,
        event.trace_id,
        (event.occur_time.seconds, event.occur_time.nanos),
    )


def ledger_csv(rows: Iterable[LedgerRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LEDGER_COLUMNS)
    for row in rows:
        texts = [row.record, row.time, row.record_id, row.key_id, row.what, row.currency]
        numbers = [_blank(row.estimated_micros), _blank(row.amount_micros)]
        tail = [row.vendor, row.endpoint, row.trace_id]
        writer.writerow([_csv_safe(c) for c in texts] + numbers + [_csv_safe(c) for c in tail])
    return out.getvalue()


def _blank(micros: int | None) -> str:
    return "" if micros is None else str(micros)


def _csv_safe(cell: str) -> str:
    """No spreadsheet formula injection from an endpoint or id an agent chose."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)
