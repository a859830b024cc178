"""Store faults under load: Redis killed (and back empty), Postgres killed, Postgres slow.

The services run as their own processes and are never restarted here: they must recover by
themselves once the store is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc

from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from tests.fault.fault_helpers import (
    ALLOW,
    DENY,
    RETRYABLE,
    admin_md,
    assert_ledger_exact,
    authorize,
    charge_request,
    connected,
    day_cap,
    day_used,
    mint,
    own_stores,
    read_ledger,
    retry_until_ok,
    service_md,
    services,
    spend_of,
)

CENT = 10_000


async def wait_answering(call: Any, seconds: float = 30.0) -> Any:
    """Calls `call()` until it answers (only retryable errors meanwhile); bounded."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            assert error.code() in RETRYABLE, (error.code(), error.details())
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _authorize_load_through_a_redis_kill(
    vault: Any, loaded: Any, stores: Any
) -> tuple[list[tuple[float, str]], float]:
    """16 callers authorize with `loaded` while Redis is killed after 100 ALLOWs; returns every
    answer (send time, ALLOW/DENY/status code) and when the kill was done."""
    answers: list[tuple[float, str]] = []
    kill_done = [float("inf")]
    stop = asyncio.Event()

    async def caller() -> None:
        for _ in range(2000):
            if stop.is_set():
                return
            sent_at = time.monotonic()
            try:
                reply = await authorize(vault, loaded.secret, CENT, deadline=5)
            except grpc.aio.AioRpcError as error:
                answers.append((sent_at, error.code().name))
                await asyncio.sleep(0.01)
                continue
            answers.append((sent_at, vault_pb2.Decision.Name(reply.decision)))

    async def killer() -> None:
        for _ in range(600):
            if sum(a == "DECISION_ALLOW" for _, a in answers) >= 100:
                break
            await asyncio.sleep(0.05)
        assert stores.redis_server is not None
        stores.redis_server.kill()
        kill_done[0] = time.monotonic()
        await asyncio.sleep(1.5)  # load keeps coming while Redis is gone
        stop.set()

    await asyncio.gather(killer(), *(caller() for _ in range(16)))
    return answers, kill_done[0]


async def test_redis_killed_under_authorize_load_fails_closed_and_recovers_with_caps() -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    with own_stores() as stores, services(stores, "vault", "metering") as procs:
        assert stores.redis_server is not None
        async with connected(procs) as (vault, metering):
            capped = await mint(vault, tenant, [day_cap(5_000_000)])  # 5.00 a day
            revoked = await mint(vault, tenant)
            loaded = await mint(vault, tenant, [day_cap(1_000_000_000)])
            # 4.00 of the 5.00 spent before the fault: held by Authorize, settled by Charge.
            held = await authorize(vault, capped.secret, 4_000_000)
            assert held.decision == ALLOW
            spent = charge_request(f"{tenant}-before", capped.key.key_id, 4_000_000)
            spent.reservation_id = held.reservation_id
            await metering.Charge(spent, metadata=service_md(), timeout=10)
            assert (await authorize(vault, revoked.secret)).decision == ALLOW
            await vault.RevokeKey(
                vault_pb2.RevokeKeyRequest(name=revoked.key.name, reason="fault test"),
                metadata=admin_md(),
                timeout=10,
            )
            assert (await authorize(vault, revoked.secret)).decision == DENY

            answers, kill_done = await _authorize_load_through_a_redis_kill(vault, loaded, stores)
            kinds = {a for _, a in answers}
            assert kinds <= {"DECISION_ALLOW", "DECISION_DENY", "UNAVAILABLE"}, kinds
            after = [a for t, a in answers if t > kill_done]
            allows_after_kill = sum(a == "DECISION_ALLOW" for a in after)
            assert allows_after_kill == 0
            assert after and all(a == "UNAVAILABLE" for a in after)

            stores.redis_server.restart()  # empty: no persistence
            # No service restart: the next calls reload keys and rebuild windows from Postgres.
            first = await wait_answering(lambda: authorize(vault, capped.secret))
            assert first.decision == ALLOW and day_used(first) == 4_000_000
            granted = 0
            for cost in (1_010_000, 600_000, 500_000, 400_000, CENT):
                reply = await authorize(vault, capped.secret, cost)
                granted += cost if reply.decision == ALLOW else 0
            assert granted == 1_000_000  # exactly the 1.00 left, never more
            denied = await authorize(vault, revoked.secret)
            assert (denied.decision, denied.reason) == (DENY, vault_pb2.DENY_REASON_KEY_REVOKED)
            assert (await authorize(vault, loaded.secret, CENT)).decision == ALLOW
            recovered = await wait_answering(
                lambda: metering.Charge(
                    charge_request(f"{tenant}-after", loaded.key.key_id, CENT),
                    metadata=service_md(),
                    timeout=5,
                )
            )
            # The first try may have been committed and then answered UNAVAILABLE (Redis not
            # reconnected yet for the settle); the retry says duplicate. One row either way.
            after_ledger = await read_ledger(stores.database_url, tenant)
            assert after_ledger.per_request.get(f"{tenant}-after") == 1, recovered
            print(
                f"\nFAULT redis-kill: authorize_tried={len(answers)}"
                f" allow={sum(a == 'DECISION_ALLOW' for _, a in answers)}"
                f" unavailable={sum(a == 'UNAVAILABLE' for _, a in answers)}"
                f" sent_after_kill={len(after)} allow_after_kill={allows_after_kill}"
                f" cap_used_after_empty_restart={day_used(first)} granted_after={granted}"
                f" revoked_still={vault_pb2.DenyReason.Name(denied.reason)}"
            )


@dataclass
class _ChargeLoad:
    sent: dict[str, metering_pb2.ChargeRequest] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    acked_after_kill: list[str] = field(default_factory=list)


async def _charges_through_a_postgres_kill(
    metering: Any, key_id: str, tenant: str, stores: Any
) -> _ChargeLoad:
    """16 callers charge while Postgres is killed after 200 acknowledged charges."""
    load = _ChargeLoad()
    kill_done = [float("inf")]
    stop = asyncio.Event()
    counter = iter(range(100_000))

    async def caller() -> None:
        for _ in range(2000):
            if stop.is_set():
                return
            n = next(counter)
            request = charge_request(f"{tenant}-{n}", key_id, 1_000 + (n % 89) * 113)
            load.sent[request.request_id] = request
            sent_at = time.monotonic()
            try:
                await metering.Charge(request, metadata=service_md(), timeout=5)
            except grpc.aio.AioRpcError as error:
                load.failed[request.request_id] = error.code().name
                await asyncio.sleep(0.02)
                continue
            load.acked.add(request.request_id)
            if sent_at > kill_done[0]:
                load.acked_after_kill.append(request.request_id)

    async def killer() -> None:
        for _ in range(600):
            if len(load.acked) >= 200:
                break
            await asyncio.sleep(0.05)
        assert stores.postgres_server is not None
        stores.postgres_server.kill()
        kill_done[0] = time.monotonic()
        await asyncio.sleep(2.0)
        stop.set()

    await asyncio.gather(killer(), *(caller() for _ in range(16)))
    return load


async def test_postgres_killed_during_charges_acknowledges_only_what_committed() -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    # Durable (fsync on) here: with synchronous_commit off a killed server may lose commits it
    # had already reported, which would test the test settings, not Keyleash.
    with (
        own_stores(durable_postgres=True) as stores,
        services(stores, "vault", "metering") as procs,
    ):
        assert stores.postgres_server is not None
        async with connected(procs) as (vault, metering):
            key_id = (await mint(vault, tenant)).key.key_id
            load = await _charges_through_a_postgres_kill(metering, key_id, tenant, stores)
            sent, acked, failed, acked_after_kill = (
                load.sent,
                load.acked,
                load.failed,
                load.acked_after_kill,
            )
            acked_before = set(acked)
            codes = sorted(set(failed.values()))
            assert set(codes) <= {c.name for c in RETRYABLE}, codes
            assert not acked_after_kill, f"acknowledged with Postgres down: {acked_after_kill[:5]}"

            stores.postgres_server.restart()
            # Every acknowledged charge survived the crash, before any retry could add it.
            committed = await read_ledger(stores.database_url, tenant)
            lost = sorted(acked_before - committed.per_request.keys())
            assert not lost, f"acknowledged, not committed: {lost[:10]}"
            committed_unacked = len(committed.per_request.keys() - acked_before)

            # No service restart: the pool replaces its dead connections as it goes.
            retried = [r for rid, r in sent.items() if rid not in acked_before]
            outcome = await retry_until_ok(metering, retried, callers=16)
            acked |= {r.request_id for r in retried}
            ledger = await read_ledger(stores.database_url, tenant)
            spend = await spend_of(metering, tenant)
            print(
                f"\nFAULT postgres-kill: charges_tried={len(sent)} acked_before_kill={len(acked_before)}"
                f" failed={len(failed)} codes={codes} acked_while_down={len(acked_after_kill)}"
                f" in_ledger_after_restart={len(committed.per_request)} lost_acked={len(lost)}"
                f" committed_unacked={committed_unacked} retried={len(retried)}"
                f" retry_attempts={outcome.attempts} retries_reported_duplicate={outcome.duplicates}"
                f" ledger_rows={ledger.rows} duplicates={len(ledger.duplicated)}"
            )
            assert_ledger_exact(ledger, sent, acked, spend)


async def _authorize_twenty_times(vault: Any, secret: str) -> list[str]:
    """20 Authorize calls 0.1 s apart, each with a 2 s deadline: decisions or status codes."""
    seen = []
    for _ in range(20):
        try:
            reply = await authorize(vault, secret, CENT, deadline=2)
            seen.append(vault_pb2.Decision.Name(reply.decision))
        except grpc.aio.AioRpcError as error:
            seen.append(error.code().name)
        await asyncio.sleep(0.1)
    return seen


async def test_slow_postgres_times_charges_out_cleanly_and_authorize_keeps_answering() -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    with own_stores() as stores, services(stores, "vault", "metering") as procs:
        async with connected(procs) as (vault, metering):
            minted = await mint(vault, tenant, [day_cap(1_000_000_000)])
            key_id = minted.key.key_id
            assert (await authorize(vault, minted.secret, CENT)).decision == ALLOW
            warm = charge_request(f"{tenant}-warm", key_id, CENT)
            await metering.Charge(warm, metadata=service_md(), timeout=10)
            sent = {warm.request_id: warm}
            acked = {warm.request_id}
            blocked = [charge_request(f"{tenant}-{n}", key_id, 2_000 + n) for n in range(8)]
            sent |= {r.request_id: r for r in blocked}
            patient = charge_request(f"{tenant}-patient", key_id, 5_000)
            sent[patient.request_id] = patient

            locker = await asyncpg.connect(stores.database_url, timeout=10)
            try:
                lock = locker.transaction()
                await lock.start()
                await locker.execute("LOCK TABLE billing_requests IN ACCESS EXCLUSIVE MODE")

                async def short_deadline(request: metering_pb2.ChargeRequest) -> str:
                    try:
                        await metering.Charge(request, metadata=service_md(), timeout=2)
                    except grpc.aio.AioRpcError as error:
                        return str(error.code().name)
                    return "OK"

                async def server_answer() -> tuple[str, str]:
                    # A long client deadline: what does the server itself answer?
                    try:
                        await metering.Charge(patient, metadata=service_md(), timeout=30)
                    except grpc.aio.AioRpcError as error:
                        return error.code().name, error.details() or ""
                    return "OK", ""

                patient_task = asyncio.ensure_future(server_answer())
                short, decisions = await asyncio.gather(
                    asyncio.gather(*(short_deadline(r) for r in blocked)),
                    _authorize_twenty_times(vault, minted.secret),
                )
                # Hold the lock until the server has given up by itself (bounded by the 30 s).
                server_code, server_details = await patient_task
            finally:
                await locker.execute("ROLLBACK")
                await locker.close()

            assert set(short) <= {c.name for c in RETRYABLE}, short
            assert decisions == ["DECISION_ALLOW"] * 20, decisions
            assert server_code in {c.name for c in RETRYABLE}, (server_code, server_details)

            retried = [*blocked, patient]
            outcome = await retry_until_ok(metering, retried, callers=8)
            acked |= {r.request_id for r in retried}
            ledger = await read_ledger(stores.database_url, tenant)
            spend = await spend_of(metering, tenant)
            print(
                f"\nFAULT slow-postgres: charges_tried={len(sent)}"
                f" short_deadline_codes={sorted(set(short))} authorize_during_lock={len(decisions)}"
                f" allow={decisions.count('DECISION_ALLOW')} server_status={server_code}"
                f" ({server_details[:80]!r}) retried={len(retried)}"
                f" retries_reported_duplicate={outcome.duplicates}"
                f" ledger_rows={ledger.rows} duplicates={len(ledger.duplicated)}"
            )
            assert_ledger_exact(ledger, sent, acked, spend)
