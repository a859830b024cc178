"""OpenTelemetry for both services: traces (OTEL_* configured), metrics for Prometheus, JSON logs.

Traces: the standard variables decide. OTEL_TRACES_EXPORTER=otlp (OTLP over gRPC; endpoint from
OTEL_EXPORTER_OTLP_ENDPOINT), =console (development), or unset/none (off: the API stays a no-op,
which is what the tests get unless they install a provider themselves).

`agent_run_id` travels as W3C baggage and, for callers without OpenTelemetry, as gRPC metadata
`x-agent-run-id`; the server reads both itself (tracing or not), and every server span gets it as
`keyleash.agent_run_id`. OpenTelemetry's server interceptor is installed only when tracing is.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeAlias
from urllib.parse import unquote

import grpc
from opentelemetry import baggage, metrics, trace

AGENT_RUN_BAGGAGE = "agent_run_id"
AGENT_RUN_HEADER = "x-agent-run-id"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
# The running call's agent run, bound by bind_agent_run (tracing or not).
_AGENT_RUN: ContextVar[str] = ContextVar("keyleash_agent_run_id", default="")

tracer = trace.get_tracer("keyleash")
meter = metrics.get_meter("keyleash")

# Instruments. Labels are bounded: decision, reason, store, service, tenant (no per-key labels).
DECISIONS = meter.create_counter("keyleash_decisions", description="Authorize decisions")
AUTHORIZE_SECONDS = meter.create_histogram(
    "keyleash_authorize_duration", unit="s", description="Authorize latency, server side"
)
CHARGE_SECONDS = meter.create_histogram(
    "keyleash_charge_duration", unit="s", description="Charge/RecordUsage latency incl. commit"
)
COMMIT_BATCH = meter.create_histogram(
    "keyleash_commit_batch_size", description="events per group-commit transaction"
)
RESERVATIONS_OPEN = meter.create_up_down_counter(
    "keyleash_reservations_open", description="holds placed by this process minus settled"
)
CHARGES = meter.create_counter("keyleash_charges", description="billing events recorded")
CHARGED_MICROS = meter.create_counter(
    "keyleash_charged_micros", description="micros recorded, by tenant and currency"
)
STORE_ERRORS = meter.create_counter(
    "keyleash_store_errors", description="Redis/Postgres failures (each became UNAVAILABLE)"
)


def setup_tracing(service_name: str, env: Mapping[str, str]) -> None:
    """Installs an SDK tracer provider when OTEL_TRACES_EXPORTER asks for one."""
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name in ("", "none"):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


_metrics_ports: set[int] = set()


def setup_metrics(port: int) -> None:
    """Serves the instruments above as Prometheus text on http://0.0.0.0:port/metrics.

    The meter provider is process-wide: `keyleash up` runs both services in one process, so
    both ports serve the same registry (labels tell the services apart).
    """
    if port <= 0 or port in _metrics_ports:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import start_http_server

    if not _metrics_ports:
        metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
    start_http_server(port)
    _metrics_ports.add(port)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the trace and span of the call that logged it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        run = current_agent_run()
        if run:
            entry["agent_run_id"] = run
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(env: Mapping[str, str]) -> None:
    """JSON lines on stderr at KEYLEASH_LOG_LEVEL (INFO); KEYLEASH_LOG_FORMAT=text for humans."""
    handler = logging.StreamHandler()
    if env.get("KEYLEASH_LOG_FORMAT", "json").lower() == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(env.get("KEYLEASH_LOG_LEVEL", "INFO").upper())


def tracing_configured() -> bool:
    """True once a real tracer provider is installed (setup_tracing, or a test's SDK provider);
    the API's default proxy means nobody collects spans."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """OpenTelemetry's span per RPC (context and baggage from the metadata) when tracing is
    configured, else none: grpc.aio then skips its interceptor chain, which costs on every call
    even when each interceptor returns at once. Agent-run tagging and error mapping are applied
    to the handlers once, at registration (keyleash_core.grpc_server.CallGuard)."""
    if not tracing_configured():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor()]  # type: ignore[no-untyped-call]


def bind_agent_run(context: Context) -> None:
    """Makes the call's agent run (baggage, then x-agent-run-id) the one agent_run_id_of and log
    lines see, and puts it on the call's span. grpc.aio runs every RPC in its own task, so the
    value ends with the call."""
    run = _run_from_metadata(context.invocation_metadata())
    if not run:
        return
    _AGENT_RUN.set(run)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("keyleash.agent_run_id", run)


def agent_run_id_of(context: Context) -> str:
    """The call's agent run: W3C baggage first, then the x-agent-run-id header."""
    run = _AGENT_RUN.get() or baggage.get_baggage(AGENT_RUN_BAGGAGE)
    if run:
        return str(run)
    return _run_from_metadata(context.invocation_metadata())


def current_agent_run() -> str:
    """The agent run bound to the running call, or the current baggage's ("" for none)."""
    run = _AGENT_RUN.get() or baggage.get_baggage(AGENT_RUN_BAGGAGE)
    return str(run) if run else ""


def _run_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    header = ""
    for name, value in metadata or ():
        if name == "baggage" and isinstance(value, str) and AGENT_RUN_BAGGAGE in value:
            run = _baggage_member(value, AGENT_RUN_BAGGAGE)
            if run:
                return run
        elif name == AGENT_RUN_HEADER and isinstance(value, str):
            header = value
    return header


def _baggage_member(header: str, wanted: str) -> str:
    """One member's value of a W3C baggage header ("k=v;property,k2=v2"), percent-decoded."""
    for member in header.split(","):
        key, sep, value = member.partition(";")[0].partition("=")
        if sep and key.strip() == wanted:
            return unquote(value.strip())
    return ""


def annotate(**attributes: str) -> None:
    """Sets keyleash.* attributes on the current span (empty values are left out)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        if value:
            span.set_attribute(f"keyleash.{name}", value)


@contextmanager
def store_span(name: str) -> Iterator[None]:
    """A child span around one Redis or Postgres call (none when the call is not traced: the
    span would be dropped anyway, and this runs several times per RPC)."""
    if not trace.get_current_span().is_recording():
        yield
        return
    with tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT):
        yield


def process_name() -> str:
    return f"{os.uname().nodename}-{os.getpid()}"
