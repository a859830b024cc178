"""Shared pieces of the fault tests: own stores, services as real processes, ledger checks.

Every fault test owns its Redis and PostgreSQL processes (so it may kill them) and runs the
services as `python -m vault_service` / `python -m metering_service` processes (so it may SIGKILL
them). Every loop is bounded and every call has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health_pb2

from keyleash.metering.v1 import metering_pb2, metering_pb2_grpc
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_ops.devstores import ManagedServer, start_postgres, start_redis
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN, Stores, bearer, service_env
from tests.typed_stubs import health_stub

ROOT = Path(__file__).resolve().parents[2]
ALLOW, DENY = vault_pb2.DECISION_ALLOW, vault_pb2.DECISION_DENY
DAY = vault_pb2.SpendCap.WINDOW_CALENDAR_DAY
# What a client may see while a process or a store is down: retryable, never a wrong answer.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def vault_stub(channel: grpc.aio.Channel) -> Any:
    return vault_pb2_grpc.VaultServiceStub(channel)


def metering_stub(channel: grpc.aio.Channel) -> Any:
    return metering_pb2_grpc.MeteringServiceStub(channel)


def admin_md() -> tuple[tuple[str, str], ...]:
    return bearer(ADMIN_TOKEN)


def service_md() -> tuple[tuple[str, str], ...]:
    return bearer(SERVICE_TOKEN)


def usd_micros(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


def fresh_dir(prefix: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)  # postgres runs as another user when we are root; it must traverse this
    return base


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def own_stores(
    *, durable_postgres: bool = False, persistent_redis: bool = False
) -> Iterator[Stores]:
    """A Redis and a PostgreSQL of this test's own, stopped at the end whatever happened."""
    base = fresh_dir("keyleash-fault-")
    started: list[ManagedServer] = []
    try:
        postgres = start_postgres(base / "postgres", durable=durable_postgres)
        started.append(postgres)
        redis_server = start_redis(base / "redis", persistent=persistent_redis)
        started.append(redis_server)
        yield Stores(redis_server.url, postgres.url, redis_server, postgres)
    finally:
        for server in reversed(started):
            with suppress(Exception):
                server.stop(timeout=5.0)
        shutil.rmtree(base, ignore_errors=True)


class ServiceProcess:
    """One service run as deployed (`python -m NAME_service`), which the test may SIGKILL."""

    def __init__(self, name: str, stores: Stores, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.env = (
            os.environ
            | service_env(stores)
            | {
                f"KEYLEASH_{name.upper()}_LISTEN": self.target,
                "KEYLEASH_STORE_TIMEOUT_SECONDS": "1",
                "KEYLEASH_LOG_LEVEL": "WARNING",
            }
        )
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"{self.name}_service"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    def sigkill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    async def wait_serving(self, seconds: float = 40.0) -> None:
        deadline = time.monotonic() + seconds
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = health_stub(channel)
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited: {self.log_tail()}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} did not become healthy: {self.log_tail()}")

    def log_tail(self) -> str:
        with suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-8:])
        return "(no log)"


@contextmanager
def services(stores: Stores, *names: str) -> Iterator[dict[str, ServiceProcess]]:
    log_dir = fresh_dir("keyleash-fault-logs-")
    procs = {name: ServiceProcess(name, stores, log_dir) for name in names}
    try:
        for proc in procs.values():
            proc.start()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


@asynccontextmanager
async def connected(procs: dict[str, ServiceProcess]) -> AsyncIterator[tuple[Any, Any]]:
    """Vault and metering stubs once both processes serve; the channels close at the end."""
    await procs["vault"].wait_serving()
    await procs["metering"].wait_serving()
    async with (
        grpc.aio.insecure_channel(procs["vault"].target) as vault_channel,
        grpc.aio.insecure_channel(procs["metering"].target) as metering_channel,
    ):
        yield vault_stub(vault_channel), metering_stub(metering_channel)


async def mint(vault: Any, tenant: str, caps: list[vault_pb2.SpendCap] | None = None) -> Any:
    return await vault.MintKey(
        vault_pb2.MintKeyRequest(
            tenant_id=tenant,
            agent_id="agent-" + uuid.uuid4().hex[:6],
            label="fault-test",
            scopes=["api.call"],
            policy=vault_pb2.Policy(spend_caps=caps or []),
        ),
        metadata=admin_md(),
        timeout=10,
    )


def day_cap(micros: int) -> vault_pb2.SpendCap:
    return vault_pb2.SpendCap(limit=usd_micros(micros), window=DAY)


async def authorize(
    vault: Any, secret: str, cost_micros: int | None = None, deadline: float = 5.0
) -> Any:
    request = vault_pb2.AuthorizeRequest(key=secret, scope="api.call")
    if cost_micros is not None:
        request.estimated_cost.CopyFrom(usd_micros(cost_micros))
    return await vault.Authorize(request, metadata=bearer(secret), timeout=deadline)


def day_used(reply: vault_pb2.AuthorizeResponse) -> int:
    return int(next(q.used for q in reply.quotas if q.quota == "spend/calendar_day"))


def charge_request(request_id: str, key_id: str, micros: int) -> metering_pb2.ChargeRequest:
    return metering_pb2.ChargeRequest(
        request_id=request_id, key_id=key_id, amount=usd_micros(micros), vendor="stripe"
    )


@dataclass
class RetryOutcome:
    acknowledged: int = 0
    duplicates: int = 0  # retries the server reported as already recorded
    attempts: int = 0


async def retry_until_ok(
    metering: Any,
    requests: list[metering_pb2.ChargeRequest],
    *,
    callers: int = 32,
    max_attempts: int = 80,
    deadline: float = 5.0,
) -> RetryOutcome:
    """Client retries: each request, same request_id, until OK (bounded); only retryable errors."""
    outcome = RetryOutcome()
    todo = list(requests)

    async def caller() -> None:
        while todo:
            request = todo.pop()
            for _attempt in range(max_attempts):
                outcome.attempts += 1
                try:
                    reply = await metering.Charge(request, metadata=service_md(), timeout=deadline)
                except grpc.aio.AioRpcError as error:
                    assert error.code() in RETRYABLE, (
                        request.request_id,
                        error.code(),
                        error.details(),
                    )
                    await asyncio.sleep(0.25)
                    continue
                outcome.acknowledged += 1
                outcome.duplicates += int(reply.duplicate)
                break
            else:
                raise AssertionError(f"{request.request_id} never acknowledged")

    await asyncio.gather(*(caller() for _ in range(callers)))
    return outcome


@dataclass
class Ledger:
    per_request: dict[str, int]  # request_id -> rows in billing_events
    amounts: dict[str, int]  # request_id -> summed micros
    total_micros: int
    daily_micros: int
    daily_count: int

    @property
    def rows(self) -> int:
        return sum(self.per_request.values())

    @property
    def duplicated(self) -> list[str]:
        return sorted(r for r, n in self.per_request.items() if n != 1)


async def read_ledger(database_url: str, tenant: str) -> Ledger:
    con = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await con.fetch(
            "SELECT request_id, COUNT(*) AS n, SUM(amount_micros) AS s FROM billing_events"
            " WHERE tenant_id = $1 GROUP BY request_id",
            tenant,
        )
        daily = await con.fetchrow(
            "SELECT COALESCE(SUM(amount_micros), 0), COALESCE(SUM(event_count), 0)"
            " FROM daily_spend WHERE tenant_id = $1",
            tenant,
        )
    finally:
        await con.close()
    assert daily is not None  # an aggregate without GROUP BY always returns one row
    return Ledger(
        per_request={r["request_id"]: int(r["n"]) for r in rows},
        amounts={r["request_id"]: int(r["s"]) for r in rows},
        total_micros=sum(int(r["s"]) for r in rows),
        daily_micros=int(daily[0]),
        daily_count=int(daily[1]),
    )


async def spend_of(metering: Any, tenant: str) -> tuple[int, int]:
    reply = await metering.GetSpend(
        metering_pb2.GetSpendRequest(tenant_id=tenant), metadata=service_md(), timeout=10
    )
    micros = sum(t.micros for t in reply.totals if t.currency_code == "USD")
    return micros, int(reply.event_count)


def assert_ledger_exact(
    ledger: Ledger,
    sent: dict[str, metering_pb2.ChargeRequest],
    acknowledged: set[str],
    spend: tuple[int, int],
) -> None:
    """Every acknowledged charge exactly once; nothing else and nothing missing; sums agree."""
    missing_acked = sorted(acknowledged - ledger.per_request.keys())
    assert not missing_acked, f"acknowledged but not in billing_events: {missing_acked[:10]}"
    assert not ledger.duplicated, f"request_ids with more than one row: {ledger.duplicated[:10]}"
    assert set(ledger.per_request) == set(sent), "the ledger holds exactly the request_ids sent"
    assert ledger.rows == len(sent)
    for request_id, request in sent.items():
        assert ledger.amounts[request_id] == request.amount.micros, request_id
    expected = sum(r.amount.micros for r in sent.values())
    assert ledger.total_micros == expected
    assert spend == (ledger.total_micros, ledger.rows), "GetSpend equals the SQL sum"
    assert (ledger.daily_micros, ledger.daily_count) == (ledger.total_micros, ledger.rows), (
        "daily_spend equals the SQL sum"
    )
