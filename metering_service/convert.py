"""Proto <-> domain for metering, with the request validation that names the bad field."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from google.protobuf import timestamp_pb2
from opentelemetry import trace

from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash_core import page_tokens
from keyleash_core.errors import InvalidArgument
from keyleash_core.money import Money
from keyleash_core.times import timestamp_from_ms, timestamp_from_us
from keyleash_core.validation import money as validated_money
from keyleash_core.validation import tenant_id, text
from keyleash_core.wire import money_to_proto
from metering_service.domain.events import BillingEvent, Kind, payload_digest
from metering_service.domain.pricing import MAX_TOKENS
from metering_service.store.billing import EventFilter
from metering_service.store.tenants import TenantView
from metering_service.usecases.record_spend import EventSpec

MAX_ATTRIBUTES = 100
# Clients' clocks run a little ahead of ours; an occur_time this far "in the future" is accepted.
CLOCK_SKEW_US = 5_000_000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_KINDS = {
    Kind.CHARGE: metering_pb2.BillingEvent.KIND_CHARGE,
    Kind.USAGE: metering_pb2.BillingEvent.KIND_USAGE,
    Kind.REFUND: metering_pb2.BillingEvent.KIND_REFUND,
    Kind.RELEASE: metering_pb2.BillingEvent.KIND_RELEASE,
}


def money(value: money_pb2.Money, path: str) -> Money:
    """Amounts may be negative here: refunds."""
    return validated_money(value, path, allow_negative=True)


# What Postgres and Python datetimes can hold, and what makes sense for spend: 1970 to 9999.
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


def micros_of(ts: timestamp_pb2.Timestamp, path: str = "time") -> int:
    if not 0 <= ts.seconds <= MAX_SECONDS or not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument(path, "a valid timestamp between 1970 and 9999")
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def occur_time(ts: timestamp_pb2.Timestamp, has: bool, now_ms: int, path: str) -> int:
    """The event's time in microseconds: unset means now; never in the future."""
    now_us = now_ms * 1000
    if not has:
        return now_us
    value = micros_of(ts, path)
    if value > now_us + CLOCK_SKEW_US:
        raise InvalidArgument(path, "must not be in the future")
    return value


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.trace_id else ""


def attributes(values: Mapping[str, str], path: str) -> dict[str, str]:
    if len(values) > MAX_ATTRIBUTES:
        raise InvalidArgument(path, f"at most {MAX_ATTRIBUTES} entries")
    return {text(k, path, limit=128): text(v, f"{path}[{k}]") for k, v in values.items()}


def charge_spec(
    r: metering_pb2.ChargeRequest, now_ms: int, run_from_metadata: str = ""
) -> EventSpec:
    if not r.HasField("amount"):
        raise InvalidArgument("amount", "required")
    return EventSpec(
        request_id=text(r.request_id, "request_id", required=True, limit=256),
        key_id=text(r.key_id, "key_id", required=True, limit=128),
        digest=payload_digest("Charge", r.SerializeToString(deterministic=True)),
        occur_time_us=occur_time(r.occur_time, r.HasField("occur_time"), now_ms, "occur_time"),
        reservation_id=text(r.reservation_id, "reservation_id", limit=128),
        amount=money(r.amount, "amount"),
        agent_run_id=text(r.agent_run_id or run_from_metadata, "agent_run_id", limit=256),
        trace_id=current_trace_id(),
        vendor=text(r.vendor, "vendor", limit=256),
        endpoint=text(r.endpoint, "endpoint", limit=2048),
        reason=text(r.reason, "reason"),
        vendor_request_id=text(r.vendor_request_id, "vendor_request_id", limit=256),
        cost_source=text(r.cost_source, "cost_source", limit=256),
        attributes=attributes(r.attributes, "attributes"),
        model=text(r.model, "model", limit=256),
        **_token_counts(r),
    )


def _token_counts(r: metering_pb2.ChargeRequest) -> dict[str, int]:
    """The token counts a gateway-priced LLM charge carries (stored, not re-priced)."""
    counts = {
        name: getattr(r, name) for name in ("input_tokens", "output_tokens", "cached_input_tokens")
    }
    for name, value in counts.items():
        if not 0 <= value <= MAX_TOKENS:
            raise InvalidArgument(name, f"between 0 and {MAX_TOKENS}")
    return counts


def usage_spec(
    r: metering_pb2.RecordUsageRequest, now_ms: int, run_from_metadata: str = ""
) -> EventSpec:
    for name in ("input_tokens", "output_tokens", "cached_input_tokens"):
        if getattr(r, name) < 0:
            raise InvalidArgument(name, "must not be negative")
    return EventSpec(
        request_id=text(r.request_id, "request_id", required=True, limit=256),
        key_id=text(r.key_id, "key_id", required=True, limit=128),
        digest=payload_digest("RecordUsage", r.SerializeToString(deterministic=True)),
        occur_time_us=occur_time(r.occur_time, r.HasField("occur_time"), now_ms, "occur_time"),
        reservation_id=text(r.reservation_id, "reservation_id", limit=128),
        agent_run_id=text(r.agent_run_id or run_from_metadata, "agent_run_id", limit=256),
        trace_id=current_trace_id(),
        model=text(r.model, "model", required=True, limit=256),
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        cached_input_tokens=r.cached_input_tokens,
    )


def event_to_proto(e: BillingEvent) -> metering_pb2.BillingEvent:
    return metering_pb2.BillingEvent(
        event_id=e.event_id, request_id=e.request_id, tenant_id=e.tenant_id, key_id=e.key_id,
        parent_key_id=e.parent_key_id, agent_id=e.agent_id, agent_run_id=e.agent_run_id,
        trace_id=e.trace_id, kind=_KINDS[e.kind], amount=money_to_proto(e.amount),
        vendor=e.vendor, endpoint=e.endpoint, model=e.model, input_tokens=e.input_tokens,
        output_tokens=e.output_tokens, cached_input_tokens=e.cached_input_tokens,
        reason=e.reason, cost_source=e.cost_source, vendor_request_id=e.vendor_request_id,
        reservation_id=e.reservation_id, attributes=e.attributes,
        occur_time=timestamp_from_us(e.occur_time_us),
        record_time=timestamp_from_us(e.record_time_us),
        converted_amounts=[
            metering_pb2.ConvertedAmount(
                amount=money_to_proto(c.amount), rate=c.rate, fx_table_version=c.version
            )
            for _cur, c in sorted(e.converted.items())
        ],
    )  # fmt: skip


def fill_basic_event(out: metering_pb2.BillingEvent, e: BillingEvent) -> None:
    """BILLING_EVENT_VIEW_BASIC (what a sender needs to confirm an event, nothing more), set in
    place: a batch's responses cost twice as much built as messages and copied in."""
    out.event_id, out.request_id, out.kind = e.event_id, e.request_id, _KINDS[e.kind]
    amount = out.amount
    amount.currency_code, amount.micros = e.amount.currency, e.amount.micros


def tenant_to_proto(view: TenantView, now_ms: int) -> metering_pb2.Tenant:
    out = metering_pb2.Tenant(tenant_id=view.tenant_id, throttled=view.throttled(now_ms))
    if view.threshold is not None:
        out.daily_threshold.CopyFrom(money_to_proto(view.threshold))
    if view.spend_today is not None:
        out.spend_today.CopyFrom(money_to_proto(view.spend_today))
    if view.throttled(now_ms):
        out.throttled_until.CopyFrom(timestamp_from_ms(view.throttled_until_ms))
    return out


def window(
    start: timestamp_pb2.Timestamp,
    has_start: bool,
    end: timestamp_pb2.Timestamp,
    has_end: bool,
    prefix: str = "",
) -> tuple[int | None, int | None]:
    start_us = micros_of(start, prefix + "start_time") if has_start else None
    end_us = micros_of(end, prefix + "end_time") if has_end else None
    if start_us is not None and end_us is not None and end_us < start_us:
        raise InvalidArgument(prefix + "end_time", "must not be before start_time")
    return start_us, end_us


def event_filter(f: metering_pb2.BillingEventFilter) -> EventFilter:
    start_us, end_us = window(
        f.start_time, f.HasField("start_time"), f.end_time, f.HasField("end_time"), "filter."
    )
    return EventFilter(
        tenant_id=tenant_id(f.tenant_id, "filter.tenant_id"),
        key_id=text(f.key_id, "filter.key_id", limit=128),
        agent_run_id=text(f.agent_run_id, "filter.agent_run_id", limit=256),
        start_us=start_us,
        end_us=end_us,
    )


def page_size(value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"between 0 and {MAX_PAGE_SIZE}")
    return value or DEFAULT_PAGE_SIZE


def _filter_tag(f: metering_pb2.BillingEventFilter, newest_first: bool) -> str:
    return page_tokens.filter_tag(f.SerializeToString(deterministic=True).hex(), newest_first)


def page_token(f: metering_pb2.BillingEventFilter, newest_first: bool, last: BillingEvent) -> str:
    return page_tokens.encode([last.occur_time_us, last.event_id], _filter_tag(f, newest_first))


def parse_page_token(
    f: metering_pb2.BillingEventFilter, newest_first: bool, token: str
) -> tuple[int, str] | None:
    found = page_tokens.decode(token, _filter_tag(f, newest_first))
    if found is None:
        return None
    try:
        time_us, event_id = found
        position = (int(time_us), str(uuid.UUID(str(event_id))))
    except (ValueError, TypeError, OverflowError):
        raise InvalidArgument("page_token", "not a token this service issued") from None
    if not 0 <= position[0] <= MAX_SECONDS * 1_000_000:
        raise InvalidArgument("page_token", "not a token this service issued")
    return position
