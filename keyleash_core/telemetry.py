"""OpenTelemetry for both services: traces (OTEL_* configured), metrics for Prometheus, JSON logs.

Traces: the standard variables decide. OTEL_TRACES_EXPORTER=otlp (OTLP over gRPC; endpoint from
OTEL_EXPORTER_OTLP_ENDPOINT), =console (development), or unset/none (off: the API stays a no-op,
which is what the tests get unless they install a provider themselves).

`agent_run_id` travels as W3C baggage and, for callers without OpenTelemetry, as gRPC metadata
`x-agent-run-id`; every server span gets it as `keyleash.agent_run_id`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias, TypeVar, cast

import grpc
from opentelemetry import baggage, metrics, trace

AGENT_RUN_BAGGAGE = "agent_run_id"
AGENT_RUN_HEADER = "x-agent-run-id"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Request = TypeVar("Request")
Response = TypeVar("Response")

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
        run = baggage.get_baggage(AGENT_RUN_BAGGAGE)
        if run:
            entry["agent_run_id"] = str(run)
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


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """OpenTelemetry's span per RPC (context and baggage from the metadata), then ours."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(), AgentRunInterceptor()]  # type: ignore[no-untyped-call]


def agent_run_id_of(context: Context) -> str:
    """The call's agent run: W3C baggage first, then the x-agent-run-id header."""
    run = baggage.get_baggage(AGENT_RUN_BAGGAGE)
    if run:
        return str(run)
    for name, value in context.invocation_metadata() or ():
        if name == AGENT_RUN_HEADER and isinstance(value, str):
            return value
    return ""


class AgentRunInterceptor(grpc.aio.ServerInterceptor):
    """Puts the call's agent_run_id on its span, and makes it the baggage of the handler."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Request, Response] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Request, Response] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler.unary_unary:
            return handler
        # Built once per method and handler (grpc.aio asks on every call).
        cached = self._wrapped.get(handler_call_details.method)
        if cached is not None and cached[0] is handler:
            return cast("grpc.RpcMethodHandler[Request, Response]", cached[1])
        # grpc.aio calls the same slot with an async behaviour; the stubs type the sync one.
        behavior = cast(Callable[..., Awaitable[Any]], handler.unary_unary)

        async def wrapped(request: Any, context: Context) -> Any:
            run = agent_run_id_of(context)
            if run:
                trace.get_current_span().set_attribute("keyleash.agent_run_id", run)
            return await behavior(request, context)

        built = grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[handler_call_details.method] = (handler, built)
        return built


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
