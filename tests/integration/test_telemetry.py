"""One trace per agent run across both services; metrics for Prometheus; JSON logs."""

from __future__ import annotations

import json
import logging
import re
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from keyleash.client import MeteringClient, VaultClient, agent_run
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_core.telemetry import JsonFormatter
from tests.conftest import ADMIN_TOKEN, running_system

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this process (the servers run in it), recording in memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    yield EXPORTER


@pytest.fixture(scope="module")
async def traced_system(spans: InMemorySpanExporter, stores: Any) -> AsyncIterator[Any]:
    """Both servers started after tracing is configured: only then do they install
    OpenTelemetry's server interceptor (the session's servers may predate the provider)."""
    async with running_system(stores) as running:
        yield running


async def test_one_trace_per_run_across_both_services(
    spans: InMemorySpanExporter, traced_system: Any, tenant: str
) -> None:
    system = traced_system
    spans.clear()
    run_id = "run-" + uuid.uuid4().hex[:8]
    async with (
        VaultClient(system.vault_address, token=ADMIN_TOKEN) as vault,
        MeteringClient(system.metering_address, token=ADMIN_TOKEN) as metering,
    ):
        minted = await vault.mint_key(
            vault_pb2.MintKeyRequest(tenant_id=tenant, agent_id="a", scopes=["api.call"])
        )
        with (
            trace.get_tracer("test").start_as_current_span("agent step") as parent,
            agent_run(run_id),
        ):
            decision = await vault.authorize(
                vault_pb2.AuthorizeRequest(
                    key=minted.secret, scope="api.call",
                    estimated_cost=money_pb2.Money(currency_code="USD", micros=500_000),
                )
            )  # fmt: skip
            charged = await metering.charge(
                request_id="c-" + run_id, key_id=minted.key.key_id,
                reservation_id=decision.reservation_id,
                amount=money_pb2.Money(currency_code="USD", micros=400_000),
            )  # fmt: skip
    trace_id = format(parent.get_span_context().trace_id, "032x")
    server = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    by_name = {s.name: s for s in server if format(s.context.trace_id, "032x") == trace_id}
    authorize = by_name["/keyleash.vault.v1.VaultService/Authorize"]
    charge = by_name["/keyleash.metering.v1.MeteringService/Charge"]
    for span in (authorize, charge):
        assert span.attributes is not None
        assert span.attributes["keyleash.agent_run_id"] == run_id
        assert span.attributes["keyleash.tenant_id"] == tenant
        assert span.attributes["keyleash.key_id"] == minted.key.key_id
    assert authorize.attributes is not None and authorize.attributes["keyleash.decision"] == "allow"
    children = [
        s
        for s in spans.get_finished_spans()
        if s.parent and s.parent.span_id == authorize.context.span_id
    ]
    assert any(s.name == "redis authorize" for s in children)
    assert charged.event.trace_id == trace_id and charged.event.agent_run_id == run_id
    con = await asyncpg.connect(system.stores.database_url)
    try:
        row = await con.fetchrow(
            "SELECT trace_id, agent_run_id FROM billing_events WHERE request_id = $1", "c-" + run_id
        )
    finally:
        await con.close()
    assert row is not None
    assert (row["trace_id"], row["agent_run_id"]) == (trace_id, run_id)


def test_json_log_lines_carry_the_trace(spans: InMemorySpanExporter) -> None:
    record = logging.LogRecord(
        "keyleash.vault", logging.INFO, __file__, 1, "froze %s", ("k1",), None
    )
    with trace.get_tracer("test").start_as_current_span("op") as span:
        line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "froze k1" and entry["level"] == "INFO"
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")


async def test_metrics_are_served_for_prometheus(stores: Any, tenant: str) -> None:
    import socket

    import grpc

    from keyleash.vault.v1 import vault_pb2_grpc
    from tests.conftest import service_env
    from tests.integration.vault_helpers import admin_token, authorize, mint
    from vault_service.server import create_server
    from vault_service.settings import VaultSettings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    built = await create_server(
        VaultSettings.from_env(service_env(stores) | {"KEYLEASH_METRICS_PORT": str(port)}),
        "127.0.0.1:0",
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            vault = vault_pb2_grpc.VaultServiceStub(channel)
            minted = await mint(vault, admin_token(), tenant)
            await authorize(vault, minted.secret)
        import asyncio

        body = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
    finally:
        await built.stop(1)
    assert re.search(
        r'keyleash_decisions_total\{[^}]*decision="allow"[^}]*reason="none"[^}]*\} 1\.0', body
    )
    assert "keyleash_authorize_duration_seconds_bucket" in body
