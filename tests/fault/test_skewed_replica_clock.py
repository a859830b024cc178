"""Issue #14, defect 8: two vault replicas whose clocks disagree still enforce a rate limit
exactly, because the decision script reads Redis's TIME instead of the caller's clock.

The second replica runs under Debian's libfaketime (`apt-get install faketime`; `./dev test`
installs it), its clock 3.5 s ahead. Before, that replica saw the other's admissions as older
than they were and dropped them from a 4 s window: 10 calls there, 10 here, 20 admitted within
a second of real time on a 10-per-4 s key."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
from google.protobuf import duration_pb2

from keyleash.vault.v1 import vault_pb2
from tests.fault.fault_helpers import (
    ServiceProcess,
    admin_md,
    authorize,
    fresh_dir,
    own_stores,
    vault_stub,
)

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEW = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "+3.5s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
LIMIT, WINDOW_S = 10, 4


def skewed_seconds() -> float:
    """How far ahead the skewed environment's wall clock is (checks libfaketime works)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env={"PATH": "/usr/bin:/bin", **SKEW},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(probe.stdout) - time.time()


async def test_a_rate_limit_holds_across_replicas_whose_clocks_disagree() -> None:
    assert LIBFAKETIME.exists(), "apt-get install -y faketime (./dev test installs it)"
    assert skewed_seconds() > 3.0
    tenant = "t-" + uuid.uuid4().hex[:12]
    logs = [fresh_dir("keyleash-fault-logs-") for _ in range(2)]
    with own_stores() as stores:
        replicas = [ServiceProcess("vault", stores, log) for log in logs]
        replicas[1].env = {**replicas[1].env, **SKEW}
        try:
            for replica in replicas:
                replica.start()
            for replica in replicas:
                await replica.wait_serving()
            async with (
                grpc.aio.insecure_channel(replicas[0].target) as first,
                grpc.aio.insecure_channel(replicas[1].target) as second,
            ):
                on_time, ahead = vault_stub(first), vault_stub(second)
                rate = vault_pb2.RateLimit(
                    limit=LIMIT, window=duration_pb2.Duration(seconds=WINDOW_S)
                )
                minted = await on_time.MintKey(
                    vault_pb2.MintKeyRequest(
                        tenant_id=tenant, agent_id="a", label="l", scopes=["api.call"],
                        policy=vault_pb2.Policy(rate_limits=[rate]),
                    ),
                    metadata=admin_md(), timeout=10,
                )  # fmt: skip
                await authorize(ahead, minted.secret)  # both replicas have the key loaded:
                await asyncio.sleep(WINDOW_S + 0.5)  # ... and that slot has aged out
                started = time.monotonic()
                replies = [await authorize(on_time, minted.secret) for _ in range(LIMIT)]
                await asyncio.sleep(0.7)  # older than window - skew, to the skewed replica
                replies += [await authorize(ahead, minted.secret) for _ in range(LIMIT)]
                elapsed = time.monotonic() - started
        finally:
            for replica in replicas:
                replica.stop()
            for log in logs:
                shutil.rmtree(log, ignore_errors=True)
    admitted = sum(r.decision == vault_pb2.DECISION_ALLOW for r in replies)
    print(f"\nFAULT skewed replica: admitted={admitted} of {len(replies)} in {elapsed:.2f}s")
    assert elapsed < WINDOW_S, "too slow a machine to fit both bursts in one window"
    assert admitted == LIMIT
