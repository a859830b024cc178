"""Which trace headers a call carries: OpenTelemetry's client interceptor adds them while
tracing is configured; without it (no interceptor on the channel) call_metadata does."""

from __future__ import annotations

import pytest
from opentelemetry import context, trace

from keyleash.client import agent_run, run
from keyleash.client.run import call_metadata

TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331


def remote_parent() -> trace.NonRecordingSpan:
    return trace.NonRecordingSpan(
        trace.SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=trace.TraceFlags(1))
    )


@pytest.mark.parametrize("configured", [False, True])
def test_the_trace_context_is_sent_by_exactly_one_of_interceptor_and_metadata(
    monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    monkeypatch.setattr(run, "tracing_configured", lambda: configured)
    token = context.attach(trace.set_span_in_context(remote_parent()))
    try:
        with agent_run("run-7"):
            headers = dict(call_metadata("kl_t"))
    finally:
        context.detach(token)
    assert headers["authorization"] == "Bearer kl_t"
    assert "agent_run_id=run-7" in headers["baggage"]
    if configured:
        assert "traceparent" not in headers  # the interceptor injects it
    else:
        assert headers["traceparent"] == f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


def test_no_trace_no_traceparent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "tracing_configured", lambda: False)
    assert "traceparent" not in dict(call_metadata(None))
