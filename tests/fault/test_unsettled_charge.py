"""Redis unreachable for a moment (not flushed: it comes back with its data, e.g. AOF) while a
Charge is recorded: the charge is committed but not acknowledged (UNAVAILABLE), and the client's
retry with the same request_id counts it in the spend windows exactly once, so the cap holds."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from keyleash.vault.v1 import vault_pb2
from tests.fault.fault_helpers import (
    ALLOW,
    DENY,
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
)


async def test_charge_recorded_while_redis_is_down_still_counts_against_the_cap() -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    with (
        own_stores(persistent_redis=True) as stores,
        services(stores, "vault", "metering") as procs,
    ):
        assert stores.redis_server is not None
        async with connected(procs) as (vault, metering):
            minted = await mint(vault, tenant, [day_cap(5_000_000)])  # 5.00 a day
            assert day_used(await authorize(vault, minted.secret)) == 0  # the key is loaded
            await asyncio.sleep(1.5)  # past the AOF's once-a-second fsync
            stores.redis_server.kill()
            request = charge_request(f"{tenant}-blip", minted.key.key_id, 4_000_000)
            try:
                await metering.Charge(request, metadata=service_md(), timeout=10)
                first = "OK"  # acknowledged: Postgres committed it
            except grpc.aio.AioRpcError as error:
                first = error.code().name
            stores.redis_server.restart()  # back with its data: nothing is rebuilt
            if first != "OK":  # a client retries what was not acknowledged, same request_id
                outcome = await retry_until_ok(metering, [request], callers=1)
                assert outcome.acknowledged == 1
            ledger = await read_ledger(stores.database_url, tenant)
            assert ledger.total_micros == 4_000_000
            for _ in range(50):
                try:
                    after = await authorize(vault, minted.secret, 4_000_000)
                    break
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("the vault did not recover")
            print(
                f"\nFAULT redis-blip-charge: charged_micros={ledger.total_micros}"
                f" first_answer={first} decision_for_4.00_more={vault_pb2.Decision.Name(after.decision)}"
                f" window_used={day_used(after)}"
            )
            # 4.00 spent of 5.00: another 4.00 must be denied.
            assert after.decision == DENY, (
                f"cap 5.00 exceeded: 4.00 recorded while Redis was down is missing from the "
                f"window (used {day_used(after)})"
            )
            assert (await authorize(vault, minted.secret, 1_000_000)).decision == ALLOW
