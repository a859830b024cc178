"""A charge Metering could not take when the vendor answered is sent again until it is recorded,
exactly once: the official Stripe SDK through a gateway whose Metering sits behind a link the
test cuts and restores (keyleash_gateway/charge_retries.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from keyleash.client import ConnectionsClient, MeteringClient, VaultClient
from keyleash_gateway.app import create_app
from keyleash_gateway.settings import GatewaySettings
from tests.conftest import SERVICE_TOKEN
from tests.gateway.conftest import SealedSystem
from tests.gateway.standins import StandIn, serve
from tests.gateway.stripe_helpers import charge, events, spent, stripe_tenant
from tests.gateway.test_gateway_killed import gateway_process


class CuttableLink:
    """A TCP forwarder to `target`: while cut, it drops every connection and refuses new ones;
    while paused, it holds every byte (a Metering that stopped answering) until resumed."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self.cut = False
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._pipes: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.address = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._pipes |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    await self.flowing.wait()
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._pipes -= {writer, upstream_writer}

    def cut_now(self) -> None:
        self.cut = True
        for writer in list(self._pipes):
            writer.transport.abort()

    async def stop(self) -> None:
        self.cut_now()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def link_to_metering(sealed_system: SealedSystem) -> AsyncIterator[CuttableLink]:
    link = CuttableLink(sealed_system.metering_address)
    await link.start()
    try:
        yield link
    finally:
        await link.stop()


@contextlib.asynccontextmanager
async def gateway_via(
    system: SealedSystem, link: CuttableLink, **settings: Any
) -> AsyncIterator[str]:
    """A gateway in this process whose Metering sits behind `link`; yields its URL."""
    app = create_app(
        GatewaySettings(
            listen="127.0.0.1:0",
            vault_target=system.vault_address,
            metering_target=link.address,
            service_token=SERVICE_TOKEN,
            **settings,
        )
    )
    runner, url = await serve(app)
    try:
        yield url
    finally:
        await runner.cleanup()


async def test_a_charge_metering_missed_is_sent_again_and_recorded_once(
    sealed_system: SealedSystem,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    link_to_metering: CuttableLink,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    async with gateway_via(sealed_system, link_to_metering, keyleash_timeout_seconds=1.0) as url:
        await charge(t, url, 700)  # Metering reachable: recorded before the answer
        assert await spent(admin_metering, tenant) == {"USD": 7_000_000}
        link_to_metering.cut_now()
        # The vendor charged the card: the agent gets Stripe's own answer, not an error.
        answered = await charge(t, url, 1_250)
        assert answered.status == "succeeded" and answered.amount == 1_250
        assert len(stripe_upstream.seen_by(t.run_id)) == 2
        await asyncio.sleep(1.5)  # a few retries meet the cut link
        assert await spent(admin_metering, tenant) == {"USD": 7_000_000}
        link_to_metering.cut = False  # Metering is back: the next retry records it
        await wait_spent(admin_metering, tenant, 19_500_000)
        await asyncio.sleep(1.0)  # and nothing more arrives after it
        assert await spent(admin_metering, tenant) == {"USD": 19_500_000}
        recorded = [e for e in await events(admin_metering, tenant) if e.amount.micros]
        assert sorted(e.amount.micros for e in recorded) == [7_000_000, 12_500_000]


async def test_with_a_state_dir_the_answer_does_not_wait_for_metering(
    sealed_system: SealedSystem,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    link_to_metering: CuttableLink,
    tenant: str,
    tmp_path: Path,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    outbox = tmp_path / "gateway" / "charges-waiting.jsonl"
    async with gateway_via(
        sealed_system,
        link_to_metering,
        keyleash_timeout_seconds=60.0,  # a charge waits this long for a Metering that stalls
        state_dir=str(tmp_path / "gateway"),
    ) as url:
        await charge(t, url, 700)
        await wait_spent(admin_metering, tenant, 7_000_000)
        link_to_metering.flowing.clear()  # Metering stops answering
        # The answer comes once the charge is on the gateway's disk, not after Metering's
        # commit: well before the 60 s the charge itself may wait.
        answered = await asyncio.wait_for(charge(t, url, 1_250), 20)
        assert answered.status == "succeeded"
        assert outbox.read_text().count('"add"') == 2
        assert await spent(admin_metering, tenant) == {"USD": 7_000_000}
        link_to_metering.flowing.set()
        await wait_spent(admin_metering, tenant, 19_500_000)
        await asyncio.sleep(1.0)
        assert await spent(admin_metering, tenant) == {"USD": 19_500_000}
        recorded = [e for e in await events(admin_metering, tenant) if e.amount.micros]
        assert sorted(e.amount.micros for e in recorded) == [7_000_000, 12_500_000]
    assert outbox.read_text().count('"done"') == 2


async def wait_spent(metering: MeteringClient, tenant: str, micros: int) -> None:
    deadline = time.monotonic() + 30
    while await spent(metering, tenant) != {"USD": micros}:
        assert time.monotonic() < deadline, await spent(metering, tenant)
        await asyncio.sleep(0.2)


async def test_a_waiting_charge_survives_the_gateway_killed_and_is_recorded_once(
    sealed_system: SealedSystem,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    admin_metering: MeteringClient,
    link_to_metering: CuttableLink,
    tenant: str,
    tmp_path: Path,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    state = {
        "KEYLEASH_METERING_TARGET": link_to_metering.address,
        "KEYLEASH_GATEWAY_STATE_DIR": str(tmp_path / "gateway"),
        "KEYLEASH_GATEWAY_KEYLEASH_TIMEOUT_SECONDS": "1",
    }
    outbox = tmp_path / "gateway" / "charges-waiting.jsonl"
    async with gateway_process(sealed_system, **state) as (url, process):
        link_to_metering.cut_now()
        answered = await charge(t, url, 2_000)
        assert answered.status == "succeeded"
        assert outbox.read_text().count('"add"') == 1  # on disk before the agent's answer
        # A second gateway on the same directory is refused at start: one owner per outbox.
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "keyleash_gateway",
            env=os.environ | {
                "KEYLEASH_VAULT_TARGET": sealed_system.vault_address,
                "KEYLEASH_SERVICE_TOKEN": SERVICE_TOKEN,
                "KEYLEASH_GATEWAY_LISTEN": "127.0.0.1:0",
            } | state,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, refusal = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 2, refusal
        assert b"another gateway uses" in refusal and b"Traceback" not in refusal
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    assert await spent(admin_metering, tenant) == {}
    link_to_metering.cut = False
    async with gateway_process(sealed_system, **state):  # a new process: it sends it again
        await wait_spent(admin_metering, tenant, 20_000_000)
        await asyncio.sleep(1.0)
        assert await spent(admin_metering, tenant) == {"USD": 20_000_000}
    recorded = [e for e in await events(admin_metering, tenant) if e.amount.micros]
    assert [e.amount.micros for e in recorded] == [20_000_000]
    # Recorded, and marked so: a third start has nothing to send.
    assert '"done"' in outbox.read_text()
    async with gateway_process(sealed_system, **state):
        await asyncio.sleep(0.5)
    assert outbox.read_text() == ""
