"""The system under test: stores (devstores or given URLs), service processes, fixtures, fills."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import asyncpg
import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_core.redis import keyspace
from keyleash_ops import devstores

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """utime+stime of `pid`; with tree=True also of its live descendants and reaped children."""
    pids = [pid]
    if tree:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields is not None:
                    children.setdefault(int(fields[1]), []).append(int(entry.name))
        stack = [pid]
        while stack:
            for child in children.get(stack.pop(), []):
                pids.append(child)
                stack.append(child)
    total = 0
    for p in pids:
        fields = _stat(p)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
            if tree:
                # cutime, cstime: children that exited and were reaped (PostgreSQL backends,
                # autovacuum workers), so a process leaving mid-window does not drop the sum.
                total += int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of all CPUs so far, from the first line of /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0, 0
    user, nice, system_, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system_ + irq + softirq, steal, sum(fields)


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class System:
    redis_url: str
    database_url: str
    admin_token: str
    service_token: str
    workdir: Path
    managed: list[devstores.ManagedServer] = field(default_factory=list)
    services: dict[str, Service] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    server_loop: str = "asyncio"  # or "uvloop": services run through bench/serve.py

    def cpu_pids(self) -> dict[str, tuple[int, bool]]:
        """Name -> (pid, whole tree?) of every process whose CPU the report shows."""
        out = {name: (s.proc.pid, False) for name, s in self.services.items()}
        for server in self.managed:
            if server.name == "redis":
                proc = getattr(server, "_proc", None)
                if proc is not None:
                    out["redis"] = (proc.pid, False)
            elif server.name == "postgres":
                pid = server._live_pid()  # type: ignore[attr-defined]
                if pid is not None:
                    out["postgres"] = (pid, True)
        return out

    def cpu_snapshot(self) -> dict[str, float]:
        return {n: process_cpu_seconds(pid, tree=t) for n, (pid, t) in self.cpu_pids().items()}

    def start_service(
        self,
        name: str,
        module: str,
        extra_env: dict[str, str],
        *,
        wait: bool = True,
        port: int = 0,
    ) -> Service:
        port = port or devstores.find_free_port()
        listen_var = (
            "KEYLEASH_VAULT_LISTEN" if module == "vault_service" else "KEYLEASH_METERING_LISTEN"
        )
        env = {**os.environ, **self.env, **extra_env, listen_var: f"127.0.0.1:{port}"}
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            if self.server_loop == "uvloop":
                argv = [sys.executable, "-m", "bench.serve", module.removesuffix("_service")]
            else:
                argv = [sys.executable, "-m", module]
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=out)
        service = Service(name, proc, port, log)
        self.services[name] = service
        if wait:
            wait_serving(service)
        return service

    def start_bare(self, name: str = "bare") -> Service:
        """The bare grpc.aio floor (bench/bare.py): health only, no interceptors."""
        port = devstores.find_free_port()
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            argv = [sys.executable, "-m", "bench.bare", str(port)]
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=out)
        service = Service(name, proc, port, log)
        self.services[name] = service
        return service

    def stop(self, logs_to: Path | None = None) -> None:
        """Stops everything it started, keeps the service logs and deletes the data dirs."""
        for service in self.services.values():
            service.stop()
        for server in self.managed:
            server.stop()
        if logs_to is not None:
            logs_to.mkdir(parents=True, exist_ok=True)
            for service in self.services.values():
                if service.log.exists():
                    shutil.copy(service.log, logs_to / service.log.name)
        shutil.rmtree(self.workdir, ignore_errors=True)


class _Health(Protocol):
    """What HealthStub has: types-grpcio-health-checking declares it without its methods."""

    Check: grpc.UnaryUnaryMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ]


def wait_serving(service: Service, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited: {service.log.read_text()[-2000:]}")
        try:
            with grpc.insecure_channel(service.address) as channel:
                stub = cast(_Health, health_pb2_grpc.HealthStub(channel))
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} did not start: {service.log.read_text()[-2000:]}")


def start_system(redis_url: str | None, database_url: str | None) -> System:
    workdir = Path(tempfile.mkdtemp(prefix="keyleash-bench-"))
    os.chmod(workdir, 0o755)  # postgres may run as another OS user and must traverse it
    managed: list[devstores.ManagedServer] = []
    if not redis_url:
        server = devstores.start_redis(workdir / "redis", persistent=False)
        managed.append(server)
        redis_url = server.url
    if not database_url:
        server = devstores.start_postgres(workdir / "postgres", durable=False)
        managed.append(server)
        database_url = server.url
    admin_token = "bench-admin-" + secrets.token_hex(16)
    service_token = "bench-service-" + secrets.token_hex(16)
    system = System(redis_url, database_url, admin_token, service_token, workdir, managed)
    system.env = {
        "KEYLEASH_REDIS_URL": redis_url,
        "KEYLEASH_DATABASE_URL": database_url,
        "KEYLEASH_KEY_PEPPER": "bench-pepper-" + secrets.token_hex(16),
        "KEYLEASH_ADMIN_TOKEN_SHA256": hashlib.sha256(admin_token.encode()).hexdigest(),
        "KEYLEASH_SERVICE_TOKEN_SHA256": hashlib.sha256(service_token.encode()).hexdigest(),
        "KEYLEASH_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "KEYLEASH_METRICS_PORT": "0",
    }
    return system


# ---- fixtures ----------------------------------------------------------------------------------


def usd(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


def busy_policy() -> vault_pb2.Policy:
    """2 rate windows and 2 spend windows, far from their limits: every call is an ALLOW."""
    return vault_pb2.Policy(
        rate_limits=[
            vault_pb2.RateLimit(limit=1_000_000, window={"seconds": 1}),
            vault_pb2.RateLimit(limit=10_000_000, window={"seconds": 10}),
        ],
        spend_caps=[
            vault_pb2.SpendCap(limit=usd(10**15), window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY),
            vault_pb2.SpendCap(limit=usd(10**15), window=vault_pb2.SpendCap.WINDOW_ROLLING_24H),
        ],
    )


async def mint_keys(
    system: System, tenant: str, count: int, policy: vault_pb2.Policy
) -> list[vault_pb2.MintKeyResponse]:
    async with grpc.aio.insecure_channel(system.services["vault"].address) as channel:
        stub = vault_pb2_grpc.VaultServiceStub(channel)
        meta = (("authorization", f"Bearer {system.admin_token}"),)
        out = []
        for i in range(count):
            out.append(
                await stub.MintKey(
                    vault_pb2.MintKeyRequest(
                        tenant_id=tenant, agent_id=f"bench-agent-{i}", label="bench",
                        scopes=["api.call"], policy=policy,
                    ),
                    metadata=meta,
                )
            )  # fmt: skip
        for minted in out:
            await _load(stub, minted.secret)
        return out


async def _load(stub: vault_pb2_grpc.VaultServiceStub, secret: str) -> None:
    """One Authorize loads the key (and the tenant) into Redis."""
    request = vault_pb2.AuthorizeRequest(key=secret, scope="api.call")
    metadata = (("authorization", f"Bearer {secret}"),)
    await _retry(lambda: stub.Authorize(request, metadata=metadata))


async def mint_chain(
    system: System, tenant: str, depth: int, policy: vault_pb2.Policy
) -> list[vault_pb2.MintKeyResponse]:
    """A root key and `depth` descendants, each minted by its parent with the same policy (a
    child may equal its parent's limits), so a call by the last one checks every ancestor's
    rate and spend windows too. Each key is loaded into Redis by one Authorize."""
    async with grpc.aio.insecure_channel(system.services["vault"].address) as channel:
        stub = vault_pb2_grpc.VaultServiceStub(channel)
        credential = system.admin_token
        chain: list[vault_pb2.MintKeyResponse] = []
        for level in range(depth + 1):
            minted = await stub.MintKey(
                vault_pb2.MintKeyRequest(
                    tenant_id=tenant, agent_id=f"bench-depth-{level}", label="bench",
                    scopes=["api.call"], policy=policy,
                ),
                metadata=(("authorization", f"Bearer {credential}"),),
            )  # fmt: skip
            chain.append(minted)
            credential = minted.secret
            await _load(stub, minted.secret)
        return chain


async def _retry(call: Any, attempts: int = 5) -> Any:
    """Fixture calls retry UNAVAILABLE: right after start-up a busy 2-core box can hit the 2 s
    store timeout once."""
    for attempt in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)


async def exhaust(system: System, secret: str) -> None:
    """Uses up a key's rate limit so every further Authorize is a DENY."""
    async with grpc.aio.insecure_channel(system.services["vault"].address) as channel:
        stub = vault_pb2_grpc.VaultServiceStub(channel)
        request = vault_pb2.AuthorizeRequest(key=secret, scope="api.call")
        meta = (("authorization", f"Bearer {secret}"),)
        for _ in range(5):
            await stub.Authorize(request, metadata=meta)


async def key_records(system: System, tenant: str, key_ids: list[str]) -> list[str]:
    client = aioredis.Redis.from_url(system.redis_url)
    try:
        out = []
        for key_id in key_ids:
            raw = await client.hget(keyspace.key(tenant, key_id), "record")
            assert raw is not None, f"key {key_id} is not loaded in Redis"
            out.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        return out
    finally:
        await client.aclose()


async def prepare_redis_baselines(system: System, seed_keys: int, rpm: int) -> None:
    client = aioredis.Redis.from_url(system.redis_url)
    try:
        for i in range(seed_keys):
            await client.hset(f"bench:seed:{{{i}}}:cfg", "rpm", str(rpm))
    finally:
        await client.aclose()


async def prepare_postgres_tables(system: System) -> None:
    con = await asyncpg.connect(system.database_url)
    try:
        for table in ("bench_copy", "bench_naive"):
            await con.execute(f"DROP TABLE IF EXISTS {table}")
            # Same columns, defaults and primary key as billing_events, unpartitioned.
            await con.execute(f"CREATE TABLE {table} (LIKE billing_events INCLUDING DEFAULTS)")
            await con.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (event_id, occur_time)")
    finally:
        await con.close()


# Loads idle keys shaped like a real loaded key hash plus its secret index entry.
_FILL_LUA = """
local template, first, count, tenants = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
for i = first, first + count - 1 do
  local tenant = 'fill' .. (i % tenants)
  local kid = 'kfill' .. i
  local record = string.gsub(template, '__KID__', kid)
  redis.call('HSET', 'kl:{' .. tenant .. '}:k:' .. kid, 'state', 'ACTIVE',
    'expire_ms', ARGV[5], 'policy_version', '1', 'record', record, 'calls', '0', 'loaded', '1')
  redis.call('SET', 'kl:secret:' .. redis.sha1hex(kid), tenant .. '/' .. kid)
end
return count
"""


async def fill_idle_keys(
    system: System, template_record: str, key_id: str, count: int
) -> tuple[float, int, int]:
    """Adds `count` idle keys; (used_memory growth per key, DBSIZE before, DBSIZE after)."""
    client = aioredis.Redis.from_url(system.redis_url)
    try:
        template = template_record.replace(key_id, "__KID__")
        size_before = int(await client.dbsize())
        before = int((await client.info("memory"))["used_memory"])
        expire = str(int(time.time() * 1000) + 86_400_000)
        chunk = 20_000
        for first in range(0, count, chunk):
            n = min(chunk, count - first)
            await client.eval(_FILL_LUA, 0, template, first, n, 1000, expire)
        after = int((await client.info("memory"))["used_memory"])
        per_key = (after - before) / count if count else 0.0
        return per_key, size_before, int(await client.dbsize())
    finally:
        await client.aclose()


async def key_memory(system: System, tenant: str, key_id: str) -> dict[str, float]:
    """MEMORY USAGE of one key's Redis state, split into the key hash, rate and spend windows."""
    client = aioredis.Redis.from_url(system.redis_url)
    try:
        parts: dict[str, float] = {}
        async for name in client.scan_iter(match=f"kl:{{{tenant}}}:*{key_id}*", count=1000):
            text = name.decode()
            size = float(await client.memory_usage(name, samples=0) or 0)
            part = text.split(":")[2] if text.count(":") >= 2 else text
            parts[part] = parts.get(part, 0.0) + size
        return parts
    finally:
        await client.aclose()


async def hold_memory(system: System, tenant: str) -> tuple[int, float]:
    """(holds, mean MEMORY USAGE of one) of a tenant's reservation hashes."""
    client = aioredis.Redis.from_url(system.redis_url)
    try:
        sizes = [
            float(await client.memory_usage(name, samples=0) or 0)
            async for name in client.scan_iter(match=f"kl:{{{tenant}}}:res:*", count=1000)
        ]
        return len(sizes), (sum(sizes) / len(sizes) if sizes else 0.0)
    finally:
        await client.aclose()


async def memory_usage(system: System, name: str) -> float:
    client = aioredis.Redis.from_url(system.redis_url)
    try:
        return float(await client.memory_usage(name, samples=0) or 0)
    finally:
        await client.aclose()


async def fill_billing_events(system: System, rows: int) -> float:
    """Adds `rows` billing events (spread over the last 60 days, 1,000 tenants); seconds taken."""
    con = await asyncpg.connect(system.database_url)
    started = time.monotonic()
    try:
        chunk = 500_000
        for first in range(0, rows, chunk):
            n = min(chunk, rows - first)
            await con.execute(
                """
                INSERT INTO billing_events (event_id, request_id, tenant_id, key_id, key_path,
                    agent_id, agent_run_id, kind, currency_code, amount_micros, vendor, endpoint,
                    occur_time)
                SELECT gen_random_uuid(), 'fill-' || g, 'fill' || (g % 1000), 'kfill' || g,
                    ARRAY['kroot' || (g % 1000), 'kfill' || g], 'agent', 'run-' || (g % 100000),
                    'charge', 'USD', 10000, 'stripe', 'POST /v1/charges',
                    now() - (g % 5184000) * interval '1 second'
                FROM generate_series($1::bigint, $2::bigint) AS g
                """,
                first,
                first + n - 1,
            )
        await con.execute("ANALYZE billing_events")
        return time.monotonic() - started
    finally:
        await con.close()


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
