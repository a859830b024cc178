"""SIGKILL of the metering and of the vault process mid-load (the stores stay up).

Metering: after a restart and client retries (same request_id), every acknowledged charge is in
billing_events exactly once, and nothing else is. Vault: the holds that acknowledged ALLOWs
placed live in Redis, so a restarted vault still counts them.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc

from keyleash.metering.v1 import metering_pb2
from tests.fault.fault_helpers import (
    ALLOW,
    RETRYABLE,
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
    vault_stub,
)

CALLERS = 32
PER_CALLER = 40  # 1,280 charges in all
KILL_AFTER_ACKS = 300


async def test_sigkill_of_metering_loses_and_doubles_no_acknowledged_charge() -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    with own_stores() as stores, services(stores, "vault", "metering") as procs:
        metering_proc = procs["metering"]
        async with connected(procs) as (vault, metering):
            minted = [await mint(vault, tenant, [day_cap(10**12)]) for _ in range(4)]
            for m in minted:  # loaded in Redis: every charge must be settled into its window
                assert day_used(await authorize(vault, m.secret)) == 0
            keys = [m.key.key_id for m in minted]
            sent: dict[str, metering_pb2.ChargeRequest] = {}
            lanes: list[list[metering_pb2.ChargeRequest]] = []
            for c in range(CALLERS):
                lane = []
                for i in range(PER_CALLER):
                    n = c * PER_CALLER + i
                    request = charge_request(f"{tenant}-{n}", keys[n % 4], 1_000 + (n % 97) * 137)
                    sent[request.request_id] = request
                    lane.append(request)
                lanes.append(lane)

            acked: set[str] = set()
            failed: dict[str, grpc.StatusCode] = {}
            killed = asyncio.Event()

            async def caller(lane: list[metering_pb2.ChargeRequest]) -> None:
                for request in lane:
                    if killed.is_set():
                        return  # the rest were never sent; they are retried below
                    try:
                        await metering.Charge(request, metadata=service_md(), timeout=5)
                    except grpc.aio.AioRpcError as error:
                        failed[request.request_id] = error.code()
                        continue
                    acked.add(request.request_id)

            async def killer() -> None:
                for _ in range(600):  # at most ~30 s
                    if len(acked) >= KILL_AFTER_ACKS:
                        break
                    await asyncio.sleep(0.05)
                metering_proc.sigkill()
                killed.set()

            await asyncio.gather(killer(), *(caller(lane) for lane in lanes))
            acked_before = set(acked)
            assert len(acked_before) >= KILL_AFTER_ACKS
            assert set(failed.values()) <= RETRYABLE, failed

            metering_proc.start()  # same env, same port, same stores
            await metering_proc.wait_serving()
            retried = [r for rid, r in sent.items() if rid not in acked_before]
            outcome = await retry_until_ok(metering, retried, callers=CALLERS)
            acked |= {r.request_id for r in retried}

            ledger = await read_ledger(stores.database_url, tenant)
            spend = await spend_of(metering, tenant)
            print(
                f"\nFAULT metering-sigkill: sent={len(sent)} acked_before_kill={len(acked_before)}"
                f" failed_at_kill={len(failed)} (codes={sorted({c.name for c in failed.values()})})"
                f" never_sent_before_kill={len(sent) - len(acked_before) - len(failed)}"
                f" retried={len(retried)} retry_attempts={outcome.attempts}"
                f" retries_reported_duplicate={outcome.duplicates}"
                f" ledger_rows={ledger.rows} distinct={len(ledger.per_request)}"
                f" duplicates={len(ledger.duplicated)}"
                f" missing_acked={len(acked_before - ledger.per_request.keys())}"
            )
            assert_ledger_exact(ledger, sent, acked, spend)
            # The Redis windows saw every charge exactly once too (settled once, even when the
            # kill fell between a commit and its settle and the retry settled it).
            for m in minted:
                expected = sum(r.amount.micros for r in sent.values() if r.key_id == m.key.key_id)
                assert day_used(await authorize(vault, m.secret)) == expected, m.key.key_id


async def test_sigkill_of_vault_keeps_the_holds_of_acknowledged_allows() -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    cost = 10_000  # 0.01 USD held per ALLOW
    with own_stores() as stores, services(stores, "vault") as procs:
        vault_proc = procs["vault"]
        await vault_proc.wait_serving()
        async with grpc.aio.insecure_channel(vault_proc.target) as vch:
            vault = vault_stub(vch)
            minted = await mint(vault, tenant, [day_cap(1_000_000_000)])  # 1,000.00 a day
            secret = minted.secret
            allowed = attempted = 0
            failures: dict[str, int] = {}
            killed = asyncio.Event()

            async def caller() -> None:
                nonlocal allowed, attempted
                for _ in range(200):
                    if killed.is_set():
                        return
                    attempted += 1
                    try:
                        reply = await authorize(vault, secret, cost)
                    except grpc.aio.AioRpcError as error:
                        assert error.code() in RETRYABLE, (error.code(), error.details())
                        failures[error.code().name] = failures.get(error.code().name, 0) + 1
                        continue
                    assert reply.decision == ALLOW, reply
                    allowed += 1

            async def killer() -> None:
                for _ in range(600):
                    if allowed >= 200:
                        break
                    await asyncio.sleep(0.05)
                vault_proc.sigkill()
                killed.set()

            await asyncio.gather(killer(), *(caller() for _ in range(CALLERS)))
            acked_holds = allowed * cost

            vault_proc.start()
            await vault_proc.wait_serving()
            first = await authorize(vault, secret)  # no estimate: reads the window, holds nothing
            assert first.decision == ALLOW
            used_after_restart = day_used(first)
            # Every acknowledged hold is still counted; no hold appears that nobody asked for.
            assert acked_holds <= used_after_restart <= attempted * cost
            # Decisions continue and keep placing holds.
            started = time.monotonic()
            more = 0
            for _ in range(20):
                reply = await authorize(vault, secret, cost)
                assert reply.decision == ALLOW
                more += 1
            assert day_used(await authorize(vault, secret)) == used_after_restart + more * cost
            print(
                f"\nFAULT vault-sigkill: authorize_attempted={attempted} allowed_acked={allowed}"
                f" failed_at_kill={sum(failures.values())} ({failures})"
                f" holds_acked_micros={acked_holds} used_after_restart_micros={used_after_restart}"
                f" in_flight_holds_kept={(used_after_restart - acked_holds) // cost}"
                f" allows_after_restart={more} ({time.monotonic() - started:.2f}s)"
            )
