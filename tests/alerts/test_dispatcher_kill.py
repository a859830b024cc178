"""A dispatcher killed with SIGKILL in the middle of a POST: after a restart the event is
delivered, with the same webhook-id (at-least-once), and nothing is lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from keyleash.metering.v1 import alerts_pb2
from keyleash.vault.v1 import vault_pb2
from tests.alerts.receiver import deliveries, receiving, subscribe, until
from tests.fault.fault_helpers import (
    ROOT,
    ServiceProcess,
    admin_md,
    connected,
    fresh_dir,
    mint,
    own_stores,
    services,
)

pytestmark = pytest.mark.timeout(180)
LEASE_SECONDS = "2"


def start_dispatcher(proc: ServiceProcess, log: Path) -> subprocess.Popen[bytes]:
    env = proc.env | {
        "KEYLEASH_ALERTS_LEASE_SECONDS": LEASE_SECONDS,
        "KEYLEASH_ALERTS_POLL_SECONDS": "0.2",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "metering_service.alerts"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


async def test_dispatcher_sigkill_mid_delivery_delivers_after_restart() -> None:
    with own_stores() as stores, services(stores, "vault", "metering") as procs:
        # Only the separate dispatcher delivers: the metering process runs none.
        procs["metering"].stop()
        procs["metering"].env = procs["metering"].env | {"KEYLEASH_ALERTS": "off"}
        procs["metering"].start()
        log = fresh_dir("keyleash-alerts-kill-") / "alerts.log"
        async with connected(procs) as (vault, metering), receiving() as receiver:
            receiver.hang_next = True
            tenant = "t-kill"
            await subscribe(metering, admin_md(), tenant, receiver.url, ["key.frozen"])
            minted = await mint(vault, tenant)
            await vault.FreezeKey(
                vault_pb2.FreezeKeyRequest(name=minted.key.name, reason="kill test"),
                metadata=admin_md(),
                timeout=10,
            )
            dispatcher = start_dispatcher(procs["metering"], log)
            try:
                await until(lambda: receiver.received, what="the first (hanging) POST")
                dispatcher.kill()  # SIGKILL while the POST is in flight
                dispatcher.wait(timeout=10)
                dispatcher = start_dispatcher(procs["metering"], log)

                async def delivered() -> bool:
                    rows = await deliveries(metering, admin_md(), tenant)
                    return [r.state for r in rows] == [alerts_pb2.ALERT_DELIVERY_STATE_DELIVERED]

                await until(delivered, what="delivery after the restart")
            finally:
                dispatcher.kill()
                dispatcher.wait(timeout=10)
            assert len(receiver.received) >= 2
            assert len({r.webhook_id for r in receiver.received}) == 1
