"""`python -m bench`: Keyleash against its floors and the alternatives, in one run.

Starts its own Redis and PostgreSQL (devstores, fsync off) unless URLs are given, runs Vault
(audit on), a second Vault with KEYLEASH_AUDIT=off, a third Vault for the 2-process run and
Metering as separate processes, and drives them from spawned worker processes. Writes
bench/results/<timestamp>.json and .md and prints the table. Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench import profile as profiling
from bench import stats, system
from bench.scenarios import ALL, COMPARISONS, Scenario, prepare
from bench.stats import Measurement
from bench.worker import worker_main
from keyleash.vault.v1 import vault_pb2
from keyleash_ops import devstores

RESULTS = Path(__file__).resolve().parent / "results"


class Workers:
    """N spawned load-generator processes, kept for the whole run."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def run(
        self, sut: system.System, s: Scenario, warmup: float, duration: float, profile: Any
    ) -> Measurement:
        n = len(self.conns)
        start_at = time.time() + 0.3
        measure_from = start_at + warmup
        end = measure_from + duration
        for i, conn in enumerate(self.conns):
            share = s.callers // n + (1 if i < s.callers % n else 0)
            spec = {
                "kind": s.kind, "callers": share, "params": s.params,
                "start_at": start_at, "warmup": warmup, "duration": duration,
            }  # fmt: skip
            conn.send(json.dumps(spec))
        time.sleep(max(0.0, measure_from - time.time()))
        before = sut.cpu_snapshot()
        box_before = system.machine_jiffies()
        if profile is not None:
            profile(duration)
        time.sleep(max(0.0, end - time.time()))
        after = sut.cpu_snapshot()
        box_after = system.machine_jiffies()
        m = Measurement(s.name, s.title, s.unit, 0, duration, note=s.note)
        answers = []
        for conn in self.conns:  # every answer first, so none is left for the next scenario
            if not conn.poll(duration + 60):
                raise RuntimeError(f"{s.name}: a worker did not answer")
            answers.append(conn.recv())
        for result in answers:
            if "failed" in result:
                raise RuntimeError(f"{s.name}: worker failed: {result['failed']}")
        for result in answers:
            m.ops += result["ops"]
            m.errors += result["errors"]
            m.latencies_ms.extend(result["latencies_ms"])
            m.client_cpu_seconds += result["cpu_seconds"]
        m.server_cpu_seconds = {k: after[k] - before.get(k, after[k]) for k in after}
        busy, steal, total = (a - b for a, b in zip(box_after, box_before, strict=True))
        if total > 0:
            # Others: CPU that neither the generator nor a measured server/store used (other
            # programs on the box), in % of one core like the other CPU figures.
            ours = sum(m.cpu_percent().values())
            busy_cores = 100 * (os.cpu_count() or 1) * busy / total
            m.machine_percent = {
                "busy": 100 * busy / total,
                "steal": 100 * steal / total,
                "others": max(0.0, busy_cores - ours),
            }
        return m

    def close(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "nproc": os.cpu_count(),
        "model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def code_version() -> dict[str, Any]:
    """The commit the servers ran from and the files changed on top of it (read-only git)."""
    root = Path(__file__).resolve().parent.parent

    def git(*argv: str) -> str:
        try:
            done = subprocess.run(
                ["git", *argv], cwd=root, capture_output=True, text=True, check=False, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_files": changed}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run, smaller fills (< 2 min)")
    parser.add_argument("--duration", type=float, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per scenario")
    parser.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(ALL))
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--callers", type=int, default=64, help="concurrent callers in all")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""))
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--keys", type=int, help="idle keys to load for authorize_many_keys")
    parser.add_argument("--rows", type=int, help="billing_events rows to add for charge_large")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the loaded service (Metering for its rows, else the vault) in an extra run",
    )
    parser.add_argument(
        "--profile-scenario", default="authorize_allow", help="the scenario --profile repeats"
    )
    parser.add_argument(
        "--server-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop of the service processes (uvloop: via bench/serve.py; pip install uvloop)",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    args.keys = args.keys or (100_000 if args.quick else 1_000_000)
    args.rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    selected = args.scenarios.split(",") if args.scenarios else list(ALL)
    unknown = sorted(set(selected) - set(ALL))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    args.selected = [s for s in ALL if s in selected]
    return args


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    version = code_version()  # at start: what the servers are about to import
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log("starting stores and services")
    sut = system.start_system(args.redis_url or None, args.database_url or None)
    sut.server_loop = args.server_loop
    workers: Workers | None = None
    try:
        sel = set(args.selected)
        sut.start_service("vault", "vault_service", {"KEYLEASH_AUDIT": "on"}, wait=False)
        sut.start_service("metering", "metering_service", {}, wait=False)
        if sel & {"grpc_floor_bare", "health_bare_1caller"}:
            sut.start_bare()
        if "authorize_audit_off" in sel:
            sut.start_service(
                "vault_noaudit", "vault_service", {"KEYLEASH_AUDIT": "off"}, wait=False
            )
        if "authorize_2proc" in sel:
            # Two processes on one port (SO_REUSEPORT), as a host would run them. Audit on,
            # drainer off: the audit-on vault drains for both, as one drainer would.
            shared = devstores.find_free_port()
            for name in ("vault2a", "vault2b"):
                sut.start_service(
                    name,
                    "vault_service",
                    {
                        "KEYLEASH_AUDIT": "on",
                        "KEYLEASH_AUDIT_DRAIN": "off",
                        "KEYLEASH_REUSE_PORT": "on",
                    },
                    wait=False,
                    port=shared,
                )
        workers = Workers(args.workers)
        for service in sut.services.values():
            system.wait_serving(service)
        results, memory, notes = run_all(args, sut, workers)
    finally:
        if workers is not None:
            workers.close()
        sut.stop(logs_to=RESULTS / f"{stamp}-logs")
    evaluated = stats.evaluate(COMPARISONS, {m.name: m for m in results})
    table = stats.render_table(results, evaluated, memory)
    header = (
        f"Keyleash bench {stamp} ({'--quick' if args.quick else 'full'}; {args.duration:g} s per"
        f" scenario after {args.warmup:g} s warm-up; {args.workers} generator processes,"
        f" {args.callers} callers; servers on {args.server_loop}; code {version['commit'][:10]}"
        f" + {len(version['uncommitted_files'])} uncommitted files)\n"
    )
    body = (
        header + "\n" + table + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "timestamp": stamp,
        "mode": "quick" if args.quick else "full",
        "args": {k: v for k, v in vars(args).items() if k not in ("redis_url", "database_url")},
        "machine": machine(),
        "code": version,
        "results": [m.to_json() for m in results],
        "comparisons": [e.to_json() for e in evaluated],
        "memory_bytes": memory,
        "notes": notes,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (RESULTS / f"{stamp}.md").write_text(body)
    print(body)
    log(f"wrote {RESULTS / stamp}.json and .md in {time.monotonic() - started:.0f} s")
    return 0


def run_all(
    args: argparse.Namespace, sut: system.System, workers: Workers
) -> tuple[list[Measurement], dict[str, float], list[str]]:
    sel = set(args.selected)
    notes: list[str] = [
        "Postgres runs with fsync/synchronous_commit off (devstores durable=False) unless "
        "--database-url is given: 'durable ack' here means committed, not fsynced.",
    ]
    memory: dict[str, float] = {}

    log("minting fixtures")
    scenarios, fixtures = prepare(args, sut)
    busy, lua_keys, lua_records = fixtures.busy, fixtures.lua_keys, fixtures.lua_records
    profile = make_profiler(args, sut) if args.profile else None
    results: list[Measurement] = []
    for name in args.selected:
        if name == "memory":
            continue
        if name == "authorize_many_keys":
            log(f"loading {args.keys:,} idle keys into Redis")
            per_key, before, after = system.run_async(
                system.fill_idle_keys(sut, lua_records[0], lua_keys[0].key.key_id, args.keys)
            )
            memory["idle key (INFO used_memory delta / keys)"] = per_key
            notes.append(
                f"Redis DBSIZE before the idle-key fill {before:,} (fixtures, minted keys and the"
                f" holds every ALLOW places), after {after:,}."
            )
            # Redis grows its main dictionary by incremental rehashing, mostly in its 10 Hz
            # cron right after such a load; let it finish so the figure shows steady state.
            time.sleep(1 if args.quick else 5)
        if name == "charge_large":
            log(f"adding {args.rows:,} rows to billing_events")
            took = system.run_async(system.fill_billing_events(sut, args.rows))
            notes.append(f"billing_events fill of {args.rows:,} rows took {took:.0f} s")
        s = scenarios[name]
        if s.params.get("addresses") == []:
            continue
        runs = [(s, None)]
        if name == args.profile_scenario and profile is not None:
            # A separate run with py-spy attached: its figure is shown but compared with nothing.
            profiled = Scenario(**{**s.__dict__, "name": f"{name}_profiled"})
            profiled.title = f"{s.title}, py-spy attached (not compared)"
            runs.append((profiled, profile))
        for scenario, profiler in runs:
            log(f"running {scenario.name}")
            try:
                m = workers.run(sut, scenario, args.warmup, args.duration, profiler)
            except RuntimeError as error:
                notes.append(f"{scenario.name} failed: {error}")
                log(str(error))
                continue
            results.append(m)
            log(
                f"  {m.throughput:,.0f} {m.unit}/s p50 {m.p50_ms:.2f} ms p99 {m.p99_ms:.2f} ms"
                f" errors {m.errors}"
            )
    if "memory" in sel:
        memory.update(measure_memory(sut, busy))
    if "limits_moving" in sel:
        notes.append("`limits` was installed into the venv for this run (pip install limits).")
    return results, memory, notes


def measure_memory(sut: system.System, busy: vault_pb2.Policy) -> dict[str, float]:
    """Bytes of one idle key and of one active key (2 rate + 2 spend windows) after 10 calls."""
    from keyleash_core.redis import keyspace

    out: dict[str, float] = {}
    minted = system.run_async(system.mint_keys(sut, "bench-mem", 1, busy))[0]
    key_id = minted.key.key_id
    idle = system.run_async(system.memory_usage(sut, keyspace.key("bench-mem", key_id)))
    out["idle key: key hash (MEMORY USAGE)"] = idle

    async def use() -> None:
        import grpc

        from keyleash.vault.v1 import vault_pb2_grpc

        async with grpc.aio.insecure_channel(sut.services["vault"].address) as channel:
            stub = vault_pb2_grpc.VaultServiceStub(channel)
            request = vault_pb2.AuthorizeRequest(key=minted.secret, scope="api.call")
            request.estimated_cost.CopyFrom(system.usd(10_000))
            for _ in range(9):
                await stub.Authorize(
                    request, metadata=(("authorization", f"Bearer {minted.secret}"),)
                )

    system.run_async(use())
    parts = system.run_async(system.key_memory(sut, "bench-mem", key_id))
    for part, size in sorted(parts.items()):
        out[f"active key after 10 calls: {part}"] = size
    out["active key after 10 calls: total (key hash + rate + spend)"] = sum(parts.values())
    holds, per_hold = system.run_async(system.hold_memory(sut, "bench-mem"))
    out[f"one hold (reservation hash, mean of {holds}; kept until settled or 33 days)"] = per_hold
    return out


def make_profiler(args: argparse.Namespace, sut: system.System) -> Any:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    # The process the scenario loads: Metering for the metering rows, else the vault.
    metering_rows = ("grpc_floor_metering", "charge", "charge_large", "stream_usage")
    service = "metering" if args.profile_scenario in metering_rows else "vault"
    pid = sut.services[service].proc.pid
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = RESULTS / f"{stamp}-{service}-{args.profile_scenario}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)

    def run(duration: float) -> None:
        seconds = max(1, math.floor(duration))
        proc = subprocess.run(
            [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw",
             "-o", str(raw), "--nonblocking"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0 or not raw.exists():
            log(f"py-spy failed: {proc.stderr.strip()[-300:]}")
            return
        total, own, inclusive = profiling.summarize(raw.read_text().splitlines())
        summary = raw.with_suffix(".md")
        summary.write_text(profiling.render(total, own, inclusive))
        log(f"profile: {raw} and {summary}")

    return run


if __name__ == "__main__":
    raise SystemExit(main())
