"""The load generator: one spawned process per worker, each with its own asyncio loop, its own
gRPC channels / Redis clients / Postgres pools, and M concurrent callers.

The parent sends a scenario spec over a pipe; every worker starts at the same wall-clock time,
runs through the warm-up, and counts only operations that complete inside the measured window.
It answers with the count, the latencies and its own CPU (getrusage) over that window.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import resource
import secrets
import time
import types
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

Op = Callable[[], Awaitable[int]]  # one operation; returns how many units it completed


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Recorder:
    """Counts operations completed inside [measure_from, end) and their latencies."""

    def __init__(self, measure_from: float, end: float) -> None:
        self.measure_from = measure_from
        self.end = end
        self.ops = 0
        self.errors = 0
        self.latencies_ms: list[float] = []

    def record(self, started: float, finished: float, units: int = 1) -> None:
        if self.measure_from <= finished < self.end:
            self.ops += units
            self.latencies_ms.append((finished - started) * 1000)

    def error(self, finished: float) -> None:
        if self.measure_from <= finished < self.end:
            self.errors += 1


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _unary_callers(op: Op, callers: int, rec: Recorder) -> None:
    async def caller() -> None:
        while True:
            started = time.time()
            if started >= rec.end:
                return
            try:
                units = await op()
            except Exception:
                rec.error(time.time())
                await asyncio.sleep(0.001)
                continue
            finished = time.time()
            if units > 0:
                rec.record(started, finished, units)
            else:
                rec.error(finished)

    await asyncio.gather(*(caller() for _ in range(callers)))


# ---- scenario builders: each returns (op or None, cleanup) or runs its own streams ------------


class Context:
    """Per-worker resources, created lazily and kept across scenarios."""

    def __init__(self) -> None:
        self.channels: dict[str, Any] = {}
        self.redis: dict[str, Any] = {}

    def channel(self, address: str, connection: int = 0) -> Any:
        """A channel to `address`; distinct `connection` numbers get distinct TCP connections
        (grpc otherwise shares one subchannel between channels with the same arguments), which
        lets the kernel spread them over processes sharing a port (SO_REUSEPORT)."""
        import grpc

        key = f"{address}#{connection}"
        if key not in self.channels:
            options = [("keyleash.bench.connection", connection)] if connection else []
            self.channels[key] = grpc.aio.insecure_channel(address, options=options)
        return self.channels[key]

    def redis_client(self, url: str, connections: int) -> Any:
        import redis.asyncio as aioredis

        key = f"{url}#{connections}"
        if key not in self.redis:
            self.redis[key] = aioredis.Redis.from_url(url, max_connections=connections + 4)
        return self.redis[key]

    async def aclose(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        for client in self.redis.values():
            await client.aclose()


def _round_robin(items: list[Any]) -> Callable[[], Any]:
    cycle = itertools.cycle(items)
    return lambda: next(cycle)


async def _grpc_op(ctx: Context, spec: dict[str, Any]) -> Op:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from keyleash.metering.v1 import metering_pb2, metering_pb2_grpc
    from keyleash.type.v1 import money_pb2
    from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc

    p = spec["params"]
    kind = spec["kind"]
    addresses = p["addresses"]
    connections = int(p.get("connections", 1))
    channels = [ctx.channel(a, n) for a in addresses for n in range(connections)]
    if kind == "health":
        stubs = _round_robin([health_pb2_grpc.HealthStub(c) for c in channels])
        health_request = health_pb2.HealthCheckRequest(service="")

        async def health() -> int:
            await stubs().Check(health_request)
            return 1

        return health
    if kind == "authorize":
        vaults = _round_robin([vault_pb2_grpc.VaultServiceStub(c) for c in channels])
        want = vault_pb2.DECISION_ALLOW if p["expect"] == "allow" else vault_pb2.DECISION_DENY
        requests = []
        for secret in p["secrets"]:
            request = vault_pb2.AuthorizeRequest(
                key=secret, scope="api.call", vendor="stripe", method="POST",
                path="/v1/charges", agent_run_id="bench-run",
            )  # fmt: skip
            request.estimated_cost.CopyFrom(money_pb2.Money(currency_code="USD", micros=10_000))
            requests.append((request, bearer(secret)))
        pick = _round_robin(requests)

        async def authorize() -> int:
            request, metadata = pick()
            reply = await vaults().Authorize(request, metadata=metadata)
            return 1 if reply.decision == want else 0

        return authorize
    if kind == "authorize_batch":
        vaults = _round_robin([vault_pb2_grpc.VaultServiceStub(c) for c in channels])
        metadata = bearer(p["service_token"])
        batches = []
        for secret in p["secrets"]:
            one = vault_pb2.AuthorizeRequest(
                key=secret, scope="api.call", vendor="stripe", method="POST",
                path="/v1/charges", agent_run_id="bench-run",
            )  # fmt: skip
            one.estimated_cost.CopyFrom(money_pb2.Money(currency_code="USD", micros=10_000))
            batches.append(vault_pb2.AuthorizeBatchRequest(requests=[one] * int(p["batch"])))
        pick_batch = _round_robin(batches)

        async def authorize_batch() -> int:
            reply = await vaults().AuthorizeBatch(pick_batch(), metadata=metadata)
            allowed = sum(1 for r in reply.responses if r.decision == vault_pb2.DECISION_ALLOW)
            return allowed if allowed == len(reply.responses) else 0

        return authorize_batch
    if kind == "mint":
        vault = vault_pb2_grpc.VaultServiceStub(channels[0])
        metadata = bearer(p["admin_token"])
        policy = vault_pb2.Policy(
            rate_limits=[vault_pb2.RateLimit(limit=100, window={"seconds": 60})],
            spend_caps=[
                vault_pb2.SpendCap(
                    limit=money_pb2.Money(currency_code="USD", micros=5_000_000),
                    window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY,
                )
            ],
        )

        async def mint() -> int:
            await vault.MintKey(
                vault_pb2.MintKeyRequest(
                    tenant_id=p["tenant"], agent_id="bench-agent", label="bench",
                    scopes=["api.call"], policy=policy,
                ),
                metadata=metadata,
            )  # fmt: skip
            return 1

        return mint
    if kind == "charge":
        metering = _round_robin([metering_pb2_grpc.MeteringServiceStub(c) for c in channels])
        metadata = bearer(p["service_token"])
        key_ids = _round_robin(p["key_ids"])
        amount = money_pb2.Money(currency_code="USD", micros=10_000)
        prefix = p["tenant"] + "-" + secrets.token_hex(4) + "-"
        counter = itertools.count()

        async def charge() -> int:
            await metering().Charge(
                metering_pb2.ChargeRequest(
                    request_id=f"{prefix}{next(counter)}", key_id=key_ids(), amount=amount,
                    vendor="stripe", endpoint="POST /v1/charges", agent_run_id="bench-run",
                ),
                metadata=metadata,
            )  # fmt: skip
            return 1

        return charge
    raise ValueError(f"unknown gRPC scenario kind {kind}")


async def _postgres_op(spec: dict[str, Any], pools: list[Any]) -> Op:
    import asyncpg

    p = spec["params"]
    pool = await asyncpg.create_pool(p["database_url"], min_size=1, max_size=spec["callers"])
    pools.append(pool)
    tag = secrets.token_hex(4)
    counter = itertools.count()
    if spec["kind"] == "naive_insert":
        sql = (
            "INSERT INTO bench_naive (event_id, request_id, tenant_id, key_id, key_path, kind,"
            " currency_code, amount_micros, occur_time) VALUES ($1, $2, 'bench', 'k', ARRAY['k'],"
            " 'charge', 'USD', 10000, now())"
        )

        async def insert() -> int:
            await pool.execute(sql, uuid.uuid4(), f"{tag}-{next(counter)}")  # autocommit
            return 1

        return insert
    if spec["kind"] == "pg_copy":
        batch = int(p["batch"])
        columns = [
            "event_id", "request_id", "tenant_id", "key_id", "key_path", "kind",
            "currency_code", "amount_micros", "occur_time",
        ]  # fmt: skip
        now = datetime.now(UTC)

        async def copy() -> int:
            rows = [
                (
                    uuid.uuid4(),
                    f"{tag}-{next(counter)}",
                    "bench",
                    "k",
                    ["k"],
                    "usage",
                    "USD",
                    1,
                    now,
                )
                for _ in range(batch)
            ]
            async with pool.acquire() as con:
                await con.copy_records_to_table("bench_copy", records=rows, columns=columns)
            return batch

        return copy
    raise ValueError(spec["kind"])


async def _redis_op(ctx: Context, spec: dict[str, Any], extra: list[Any]) -> Op:
    p = spec["params"]
    kind = spec["kind"]
    client = ctx.redis_client(p["redis_url"], spec["callers"])
    if kind == "redis_ping":

        async def ping() -> int:
            await client.ping()
            return 1

        return ping
    if kind == "redis_evalsha":
        script = client.register_script("return 1")

        async def evalsha() -> int:
            await script(keys=[], args=[])
            return 1

        return evalsha
    if kind == "lua_keyleash":
        from keyleash_core.keyrecord import KeyRecord
        from keyleash_core.money import Money
        from keyleash_core.redis.script_call import ScriptCall
        from keyleash_core.redis.script_pipeline import ScriptBatcher
        from keyleash_core.redis.scripts import Scripts
        from vault_service.domain.checks import CallRequest
        from vault_service.domain.decision import OutcomeKind, build_plan, parse_outcome
        from vault_service.usecases.authorize import new_decision_id

        chains = _round_robin([[KeyRecord.from_json(r) for r in chain] for chain in p["chains"]])
        scripts = Scripts(client)
        if p.get("via") == "link":  # as the vault calls it (vault_service/store/hot.py)
            batcher = ScriptBatcher(scripts, "authorize")

            async def decide(keys: list[str], args: list[str | bytes]) -> Any:
                return await batcher(ScriptCall(keys, args))

            extra.append(types.SimpleNamespace(close=scripts.aclose))  # the link's socket
        else:
            decide = scripts["authorize"]
        call = CallRequest(
            scope="api.call", vendor="stripe", method="POST", path="/v1/charges",
            estimated_cost=Money("USD", 10_000), agent_run_id="", attributes={}, request_id="",
        )  # fmt: skip

        async def lua() -> int:
            plan = build_plan(
                chains(), call, now_ms=int(time.time() * 1000), decision_id=new_decision_id(),
                reservation_id="r_" + secrets.token_hex(12),
            )  # fmt: skip
            raw = await decide(keys=plan.keys, args=plan.args)
            return 1 if parse_outcome(raw).kind is OutcomeKind.ALLOW else 0

        return lua
    if kind == "redis_seed":
        window_ms = int(p["window_ms"])
        n_keys = int(p["keys"])
        names = _round_robin(list(range(n_keys)))
        tag = secrets.token_hex(4)
        counter = itertools.count()

        async def seed() -> int:
            i = names()
            zkey = f"bench:seed:{{{i}}}:rate"
            now = int(time.time() * 1000)
            async with client.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(zkey, 0, now - window_ms)
                pipe.zadd(zkey, {f"{now}-{tag}-{next(counter)}": now})
                pipe.zcard(zkey)
                pipe.expire(zkey, window_ms // 1000 + 1)
                _, _, count, _ = await pipe.execute()
            rpm = await client.hget(f"bench:seed:{{{i}}}:cfg", "rpm")
            return 1 if int(count) <= int(rpm or 0) else 0

        return seed
    if kind == "limits_moving":
        from limits import RateLimitItemPerSecond
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        storage = RedisStorage(
            p["redis_url"].replace("redis://", "async+redis://", 1),
            implementation="redispy",
            max_connections=spec["callers"] + 4,
        )
        extra.append(storage)
        limiter = MovingWindowRateLimiter(storage)
        item = RateLimitItemPerSecond(int(p["limit"]), int(p["window_s"]))
        keys = _round_robin([f"bench-limits-{i}" for i in range(int(p["keys"]))])

        async def hit() -> int:
            return 1 if await limiter.hit(item, keys()) else 0

        return hit
    raise ValueError(kind)


async def _authorize_streams(ctx: Context, spec: dict[str, Any], rec: Recorder) -> None:
    from keyleash.type.v1 import money_pb2
    from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc

    p = spec["params"]
    window = int(p["window"])
    secrets_list = p["secrets"]
    addresses = p["addresses"]

    async def stream(index: int) -> None:
        secret = secrets_list[index % len(secrets_list)]
        stub = vault_pb2_grpc.VaultServiceStub(ctx.channel(addresses[index % len(addresses)]))
        request = vault_pb2.AuthorizeRequest(
            key=secret, scope="api.call", vendor="stripe", method="POST", path="/v1/charges",
            agent_run_id="bench-run",
        )  # fmt: skip
        request.estimated_cost.CopyFrom(money_pb2.Money(currency_code="USD", micros=10_000))
        call = stub.AuthorizeStream(metadata=bearer(secret))
        sem = asyncio.Semaphore(window)
        sent: collections.deque[float] = collections.deque()

        async def writer() -> None:
            while time.time() < rec.end:
                await sem.acquire()
                sent.append(time.time())
                await call.write(request)
            await call.done_writing()

        async def reader() -> None:
            async for reply in call:
                started = sent.popleft()
                finished = time.time()
                if reply.decision == vault_pb2.DECISION_ALLOW:
                    rec.record(started, finished)
                else:
                    rec.error(finished)
                sem.release()

        await _both(call, writer(), reader())

    await asyncio.gather(*(_reopening(stream, i, rec) for i in range(spec["callers"])))


async def _both(call: Any, *parts: Awaitable[None]) -> None:
    """Runs a stream's writer and reader; if one fails, stops the other and the call."""
    tasks = [asyncio.ensure_future(part) for part in parts]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        call.cancel()


async def _reopening(stream: Callable[[int], Awaitable[None]], index: int, rec: Recorder) -> None:
    """Runs a stream until the window ends, opening a new one when the server aborts it (e.g.
    UNAVAILABLE when a store times out under overload): counted as one error each time."""
    import grpc

    while time.time() < rec.end:
        try:
            await stream(index)
        except grpc.aio.AioRpcError:
            rec.error(time.time())
            await asyncio.sleep(0.05)


async def _usage_streams(ctx: Context, spec: dict[str, Any], rec: Recorder) -> None:
    from keyleash.metering.v1 import metering_pb2, metering_pb2_grpc

    p = spec["params"]
    window = int(p["window"])
    tag = secrets.token_hex(4)

    async def stream(index: int) -> None:
        stub = metering_pb2_grpc.MeteringServiceStub(ctx.channel(p["addresses"][0]))
        key_id = p["key_ids"][index % len(p["key_ids"])]
        call = stub.StreamUsage(metadata=bearer(p["service_token"]))
        sem = asyncio.Semaphore(window)
        sent: dict[str, float] = {}
        counter = itertools.count()

        async def writer() -> None:
            while time.time() < rec.end:
                await sem.acquire()
                rid = f"u-{tag}-{index}-{next(counter)}"
                sent[rid] = time.time()
                await call.write(
                    metering_pb2.RecordUsageRequest(
                        request_id=rid, key_id=key_id, model=p["model"], input_tokens=1000,
                        output_tokens=100, agent_run_id="bench-run",
                    )
                )  # fmt: skip
            await call.done_writing()

        async def reader() -> None:
            async for ack in call:
                finished = time.time()
                for rid in ack.request_ids:
                    rec.record(sent.pop(rid, finished), finished)
                    sem.release()

        await _both(call, writer(), reader())

    await asyncio.gather(*(_reopening(stream, i, rec) for i in range(spec["callers"])))


async def run_scenario(ctx: Context, spec: dict[str, Any]) -> dict[str, Any]:
    start_at = float(spec["start_at"])
    measure_from = start_at + float(spec["warmup"])
    end = measure_from + float(spec["duration"])
    rec = Recorder(measure_from, end)
    cleanup: list[Any] = []
    kind = spec["kind"]
    cpu: dict[str, float] = {}

    async def cpu_probe() -> None:
        await _sleep_until(measure_from)
        cpu["from"] = _cpu_seconds()
        await _sleep_until(end)
        cpu["to"] = _cpu_seconds()

    try:
        probe = asyncio.create_task(cpu_probe())
        if kind == "authorize_stream":
            await _sleep_until(start_at)
            await _authorize_streams(ctx, spec, rec)
        elif kind == "stream_usage":
            await _sleep_until(start_at)
            await _usage_streams(ctx, spec, rec)
        else:
            if kind in ("naive_insert", "pg_copy"):
                op = await _postgres_op(spec, cleanup)
            elif kind.startswith(("redis_", "lua_", "limits_")):
                op = await _redis_op(ctx, spec, cleanup)
            else:
                op = await _grpc_op(ctx, spec)
            await _sleep_until(start_at)
            await _unary_callers(op, spec["callers"], rec)
        await probe
    finally:
        for item in cleanup:
            close = getattr(item, "close", None)
            if close is not None and asyncio.iscoroutinefunction(close):
                await close()
    return {
        "ops": rec.ops,
        "errors": rec.errors,
        "latencies_ms": rec.latencies_ms,
        "cpu_seconds": cpu.get("to", 0.0) - cpu.get("from", 0.0),
    }


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    ctx = Context()
    try:
        while True:
            message = await loop.run_in_executor(None, conn.recv)
            if message is None:
                return
            try:
                result = await run_scenario(ctx, json.loads(message))
            except Exception as error:  # report, keep serving
                result = {"failed": f"{type(error).__name__}: {error}"}
            conn.send(result)
    finally:
        await ctx.aclose()


def worker_main(conn: Connection) -> None:
    """Entry point of a spawned worker process."""
    asyncio.run(_serve(conn))
