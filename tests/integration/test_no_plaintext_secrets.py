"""After a full demo run, no plaintext key secret is in Redis, Postgres, the logs or the traces."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncpg
import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from keyleash_core.telemetry import JsonFormatter
from keyleash_ops.cli import main
from tests.conftest import ADMIN_TOKEN, System

# Any key secret: "vk_" + 43 base62 characters + a 6-character checksum.
SECRET = re.compile(r"vk_[0-9A-Za-z]{49}")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def dump_redis(url: str) -> list[str]:
    client = aioredis.Redis.from_url(url, decode_responses=False)
    out: list[str] = []
    try:
        async for name in client.scan_iter(count=1000):
            out.append(name.decode(errors="replace"))
            kind = await client.type(name)  # bytes: the client does not decode responses
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "string":
                out.append(repr(await client.get(name)))
            elif kind == "hash":
                out.append(repr(await client.hgetall(name)))
            elif kind == "zset":
                out.append(repr(await client.zrange(name, 0, -1)))
            elif kind == "set":
                out.append(repr(await client.smembers(name)))
            elif kind == "stream":
                out.append(repr(await client.xrange(name)))
    finally:
        await client.aclose()
    return out


async def dump_postgres(url: str) -> list[str]:
    con = await asyncpg.connect(url)
    try:
        tables = await con.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        out: list[str] = []
        for row in tables:
            rows = await con.fetch(f'SELECT row_to_json(t)::text AS j FROM "{row["tablename"]}" t')
            out.extend(r["j"] for r in rows)
        return out
    finally:
        await con.close()


async def test_no_plaintext_secret_anywhere_after_a_demo(
    capsys: pytest.CaptureFixture[str], system: System
) -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = Collect()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    try:
        argv = ["demo", "--vault", system.vault_address, "--metering", system.metering_address,
                "--token", ADMIN_TOKEN]  # fmt: skip
        assert await asyncio.to_thread(main, argv) == 0
    finally:
        root.removeHandler(logs)
        root.setLevel(previous_level)
    capsys.readouterr()
    redis_dump = await dump_redis(system.stores.redis_url)
    postgres_dump = await dump_postgres(system.stores.database_url)
    traced = [repr(dict(s.attributes or {})) + s.name for s in spans.get_finished_spans()]
    assert redis_dump and postgres_dump and traced and logs.lines
    for where, texts in (
        ("redis", redis_dump), ("postgres", postgres_dump), ("logs", logs.lines), ("traces", traced)
    ):  # fmt: skip
        leaks = [t for t in texts if SECRET.search(t)]
        assert not leaks, f"a plaintext key secret in {where}: {leaks[:2]}"
    assert ADMIN_TOKEN not in "\n".join(redis_dump + postgres_dump + logs.lines + traced)
