"""`python -m bench.usage_hooks`: signed usage webhook ingest against the Postgres COPY floor,
measured in one run (the ratio is reported, never asserted; target >= 0.25).

Processes: its own Redis and PostgreSQL (devstores, fsync off), Vault and Metering
(`python -m vault_service` / `metering_service`), the receiver (`python -m keyleash_usage_hooks`),
and the load generator (this process, one event loop).

- floor: asyncpg `copy_records_to_table` of 512-row batches into `bench_copy` (the billing_events
  shape with its primary key), 4 connections, as `python -m bench` measures it.
- webhooks: SENDERS concurrent senders each POST batches of BATCH events (fresh event ids,
  gpt-4o tokens), signed per Standard Webhooks, and wait for the 200 (every event committed at
  Metering: priced, settled, idempotent by event id).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
from standardwebhooks.webhooks import Webhook

from bench import system
from bench.stats import percentile
from keyleash.metering.v1 import metering_pb2, metering_pb2_grpc
from keyleash_ops import devstores

RESULTS = Path(__file__).resolve().parent / "results"
COPY_COLUMNS = [
    "event_id", "request_id", "tenant_id", "key_id", "key_path", "kind", "currency_code",
    "amount_micros", "occur_time",
]  # fmt: skip
TENANT = "bench-hooks"


async def copy_floor(database_url: str, seconds: float, connections: int = 4) -> float:
    """Rows per second COPYed into bench_copy by `connections` loops of 512-row batches."""
    pool = await asyncpg.create_pool(database_url, min_size=connections, max_size=connections)
    counter = itertools.count()
    now = datetime.now(UTC)
    done = 0
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            rows = [
                (uuid.uuid4(), f"copy-{next(counter)}", "bench", "k", ["k"], "usage", "USD", 1, now)
                for _ in range(512)
            ]
            async with pool.acquire() as con:
                await con.copy_records_to_table("bench_copy", records=rows, columns=COPY_COLUMNS)
            done += len(rows)

    started = time.monotonic()
    try:
        await asyncio.gather(*(loop() for _ in range(connections)))
    finally:
        await pool.close()
    return done / (time.monotonic() - started)


def _batch(key_id: str, prefix: str, size: int) -> bytes:
    events = [
        {"id": f"{prefix}-{i}", "key_id": key_id, "model": "gpt-4o", "input_tokens": 1000 + i,
         "output_tokens": 200, "cached_input_tokens": 10}
        for i in range(size)
    ]  # fmt: skip
    return json.dumps({"events": events}, separators=(",", ":")).encode()


async def webhook_ingest(
    url: str, secret: str, key_id: str, seconds: float, senders: int, size: int
) -> tuple[float, list[float], int]:
    """(events/s acknowledged, per-batch latencies in ms, errors)."""
    signer = Webhook(secret)
    done, errors, latencies = 0, 0, []
    deadline = time.monotonic() + seconds

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.monotonic() < deadline:
            msg_id = "msg_" + uuid.uuid4().hex
            body = _batch(key_id, msg_id, size)
            when = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": signer.sign(msg_id, when, body.decode()),
            }
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
            if response.status != 200:
                errors += 1
                print(f"error {response.status}: {answer[:200]!r}", file=sys.stderr)
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            done += json.loads(answer)["accepted"]

    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(sender(session) for _ in range(senders)))
    return done / (time.monotonic() - started), latencies, errors


def start_receiver(sut: system.System) -> system.Service:
    port = devstores.find_free_port()
    env = {
        **os.environ, **sut.env,
        "KEYLEASH_METERING_TARGET": sut.services["metering"].address,
        "KEYLEASH_VAULT_TARGET": sut.services["vault"].address,
        "KEYLEASH_SERVICE_TOKEN": sut.service_token,
        "KEYLEASH_USAGE_HOOKS_LISTEN": f"127.0.0.1:{port}",
    }  # fmt: skip
    log = sut.workdir / "usage_hooks.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keyleash_usage_hooks"], env=env, cwd=system.ROOT,
            stdout=out, stderr=out,
        )  # fmt: skip
    service = system.Service("usage_hooks", proc, port, log)
    sut.services["usage_hooks"] = service
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{service.address}/healthz", timeout=1):
                return service
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the receiver did not start: {log.read_text()[-2000:]}")


async def provision(sut: system.System) -> tuple[str, str]:
    """(signing secret, key id) of the bench tenant."""
    minted = await system.mint_keys(sut, TENANT, 1, system.busy_policy())
    async with grpc.aio.insecure_channel(sut.services["metering"].address) as channel:
        created = await metering_pb2_grpc.MeteringServiceStub(channel).CreateUsageWebhookSecret(
            metering_pb2.CreateUsageWebhookSecretRequest(tenant_id=TENANT),
            metadata=(("authorization", f"Bearer {sut.admin_token}"),),
        )
    return created.signing_secret, minted[0].key.key_id


def measure(args: argparse.Namespace) -> dict[str, Any]:
    sut = system.start_system(None, None)
    sut.server_loop = args.server_loop
    try:
        sut.start_service("vault", "vault_service", {})
        sut.start_service("metering", "metering_service", {})
        receiver = start_receiver(sut)
        secret, key_id = system.run_async(provision(sut))
        system.run_async(system.prepare_postgres_tables(sut))
        url = f"http://{receiver.address}/v1/tenants/{TENANT}/usage-events"
        system.run_async(webhook_ingest(url, secret, key_id, args.warmup, args.senders, args.batch))
        floor = system.run_async(copy_floor(sut.database_url, args.duration))
        before, box_before = sut.cpu_snapshot(), system.machine_jiffies()
        senders_before = time.process_time()
        rate, latencies, errors = system.run_async(
            webhook_ingest(url, secret, key_id, args.duration, args.senders, args.batch)
        )
        senders_cpu = time.process_time() - senders_before
        after, box_after = sut.cpu_snapshot(), system.machine_jiffies()
    finally:
        sut.stop(logs_to=RESULTS / "usage_hooks-logs")
    cpu = {k: round(100 * (after[k] - before.get(k, after[k])) / args.duration) for k in after}
    cpu["senders"] = round(100 * senders_cpu / args.duration)  # this process: signing, posting
    busy, steal, total = (a - b for a, b in zip(box_after, box_before, strict=True))
    return {
        "copy_floor_rows_per_second": round(floor),
        "webhook_events_per_second": round(rate),
        "ratio": round(rate / floor, 3) if floor else 0.0,
        "target": ">= 0.25",
        "batch_p50_ms": round(percentile(latencies, 50), 1),
        "batch_p99_ms": round(percentile(latencies, 99), 1),
        "errors": errors,
        "cpu_percent_of_one_core": cpu,
        "box_busy_steal_percent_of_all_cores": [
            round(100 * x / max(total, 1)) for x in (busy, steal)
        ],
        "senders": args.senders,
        "batch": args.batch,
        "seconds": args.duration,
        "server_loop": args.server_loop,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.usage_hooks", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders")
    parser.add_argument("--batch", type=int, default=1000, help="events per delivery")
    parser.add_argument(
        "--server-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the loop Vault and Metering run on (uvloop: through bench/serve.py)",
    )
    result = measure(parser.parse_args(argv))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"usage_hooks-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
