"""`python -m bench.redis_clients`: the decision-shaped script call through each Redis client,
by CPU per call in the calling process (issue 19, lever 1). Reported, never asserted.

One process, one event loop, CALLERS concurrent callers, each calling one Lua script with the
shape of an Authorize decision (8 keys of one tenant, a ~500-byte JSON plan, two HINCRBYs, a
~100-byte answer), on a Redis of its own (devstores, nothing on disk). For each client: calls/s,
the caller's CPU per call (`time.process_time`, so what the client costs the service), and
Redis's CPU per call (INFO cpu).

Clients:
- `redis-py EVALSHA`: redis-py's AsyncScript, one command per call from the pool.
- `redis-py pipelined`: Keyleash's ScriptBatcher over redis-py pipelines (the hot path before
  the link; kept for a Redis Cluster).
- `link pipelined`: ScriptBatcher over keyleash_core/redis/resp_link.py (hiredis packing and
  parsing, one socket), the hot path on a standalone Redis now.
- `coredis`: coredis's evalsha, concurrent calls.
- `valkey-glide`: glide's Rust core (one multiplexed connection), EVALSHA as a custom command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.redis.script_pipeline import ScriptBatcher
from keyleash_core.redis.scripts import Scripts, create_redis
from keyleash_ops import devstores

SCRIPT = """
redis.call('HINCRBY', KEYS[5], 'calls', 1)
redis.call('HINCRBY', KEYS[6], 'spent', 1000)
return 'A|' .. KEYS[1] .. '|dec_0123456789abcdef|res_0123456789abcdef|' .. string.len(ARGV[1])
"""
TENANT = "{t-bench}"
KEYS = [f"kl:{TENANT}:k{i}" for i in range(8)]
PLAN = json.dumps(
    {
        "policy_versions": [3, 7],
        "rates": [{"key": i, "limit": 6000, "window_ms": 60000} for i in range(2)],
        "spends": [{"key": i, "cap": 25_000_000, "bucket": "d20261202"} for i in range(2)],
        "hold": {"micros": 250_000, "ttl_ms": 2_851_200_000},
        "audit": {"vendor": "stripe", "method": "POST", "path": "/v1/charges", "run": "run-1"},
    }
)

Call = Callable[[], Awaitable[Any]]


async def drive(call: Call, callers: int, seconds: float) -> tuple[int, float]:
    """Runs `callers` loops of `call` for `seconds`; (calls, caller CPU seconds)."""
    stop = time.monotonic() + seconds
    done = 0

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < stop:
            await call()
            done += 1

    cpu = time.process_time()
    await asyncio.gather(*(loop() for _ in range(callers)))
    return done, time.process_time() - cpu


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def clients(url: str, port: int) -> dict[str, tuple[Call, Callable[[], Awaitable[None]]]]:
    made: dict[str, tuple[Call, Callable[[], Awaitable[None]]]] = {}
    args: list[str | bytes] = [PLAN]

    plain = create_redis(url, timeout_seconds=2)
    script = plain.register_script(SCRIPT)
    made["redis-py EVALSHA"] = (lambda: script(keys=KEYS, args=args), plain.aclose)

    pipelined = create_redis(url, timeout_seconds=2)
    scripts = Scripts(pipelined)
    scripts._link = None  # the redis-py path, as on a cluster
    scripts.register("decide", SCRIPT)
    py_batcher = ScriptBatcher(scripts, "decide")
    made["redis-py pipelined"] = (lambda: py_batcher(ScriptCall(KEYS, args)), pipelined.aclose)

    linked = create_redis(url, timeout_seconds=2)
    link_scripts = Scripts(linked)
    link_scripts.register("decide", SCRIPT)
    link_batcher = ScriptBatcher(link_scripts, "decide")

    async def close_linked() -> None:
        await link_scripts.aclose()
        await linked.aclose()

    made["link pipelined"] = (lambda: link_batcher(ScriptCall(KEYS, args)), close_linked)

    sha = script.sha
    try:
        import coredis

        # coredis 6 runs its pool inside the client's async context.
        co_context = coredis.Redis(host="127.0.0.1", port=port)
        co = await co_context.__aenter__()
        await co.script_load(SCRIPT)

        async def co_close() -> None:
            await co_context.__aexit__(None, None, None)

        made["coredis"] = (lambda: co.evalsha(sha, KEYS, args), co_close)
    except ImportError:
        pass
    try:
        from glide import GlideClient, GlideClientConfiguration, NodeAddress

        glide = await GlideClient.create(
            GlideClientConfiguration([NodeAddress("127.0.0.1", port)], request_timeout=2000)
        )
        command = ["EVALSHA", sha, str(len(KEYS)), *KEYS, *args]
        made["valkey-glide"] = (lambda: glide.custom_command(command), glide.close)
    except ImportError:
        pass
    return made


async def run(url: str, port: int, callers: int, seconds: float) -> list[dict[str, Any]]:
    admin = aioredis.Redis.from_url(url)
    await admin.script_load(SCRIPT)
    rows = []
    for name, (call, close) in (await clients(url, port)).items():
        await drive(call, callers, 0.5)  # warm-up: connections made, script cached
        before = await redis_cpu(admin)
        calls, cpu = await drive(call, callers, seconds)
        redis_seconds = await redis_cpu(admin) - before
        await close()
        rows.append(
            {
                "client": name,
                "calls_per_s": calls / seconds,
                "client_us_per_call": cpu / calls * 1e6,
                "redis_us_per_call": redis_seconds / calls * 1e6,
            }
        )
    await admin.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="keyleash-bench-redis-", dir="/tmp"))
    server = devstores.start_redis(base / "redis", persistent=False)
    try:
        rounds = [
            asyncio.run(run(server.url, server.port, options.callers, options.seconds))
            for _ in range(options.rounds)
        ]
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"{options.callers} callers, {options.seconds:g} s x {options.rounds} rounds (median)")
    print("| client | calls/s | client CPU µs/call | Redis CPU µs/call |")
    print("|---|---:|---:|---:|")
    for index, first in enumerate(rounds[0]):
        column = sorted((r[index] for r in rounds), key=lambda r: r["client_us_per_call"])
        mid = column[len(column) // 2]
        print(
            f"| {first['client']} | {mid['calls_per_s']:,.0f} | "
            f"{mid['client_us_per_call']:.0f} | {mid['redis_us_per_call']:.0f} |"
        )


if __name__ == "__main__":
    main()
