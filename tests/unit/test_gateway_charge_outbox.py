"""ChargeOutbox (keyleash_gateway/charge_outbox.py) on a real directory: what a start reads back,
torn lines, compaction, one owner; and ChargeRetries keeping it."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
import pytest

from keyleash.client.errors import Unavailable
from keyleash.metering.v1 import metering_pb2
from keyleash_gateway.charge_outbox import ChargeOutbox, OutboxInUse
from keyleash_gateway.charge_retries import ChargeRetries
from tests.unit.test_gateway_charge_retries import Metering, request


async def test_a_start_reads_back_what_is_not_done_and_compacts(tmp_path: Path) -> None:
    outbox = ChargeOutbox(tmp_path)
    assert outbox.open() == []
    for name in ("r1", "r2", "r3"):
        await outbox.add(request(name))
    outbox.done("r2")
    outbox.close()
    with outbox.path.open("ab") as file:
        file.write(b'{"add": "not-base64-of-a-proto')  # a write torn by a crash
    again = ChargeOutbox(tmp_path)
    waiting = again.open()
    assert [r.request_id for r in waiting] == ["r1", "r3"]
    assert waiting[0].amount.micros == 1_250_000 and waiting[0].reservation_id == "res_1"
    assert outbox.path.read_text().count("\n") == 2  # rewritten with just those
    again.close()


def test_one_gateway_per_directory(tmp_path: Path) -> None:
    first = ChargeOutbox(tmp_path)
    first.open()
    with pytest.raises(OutboxInUse, match="KEYLEASH_GATEWAY_STATE_DIR"):
        ChargeOutbox(tmp_path).open()
    first.close()
    ChargeOutbox(tmp_path).open()  # released when the first closes


async def test_retries_write_it_before_sending_and_mark_it_done_after(tmp_path: Path) -> None:
    outbox = ChargeOutbox(tmp_path)
    metering = Metering(Unavailable(grpc.StatusCode.UNAVAILABLE, "down"), None)
    retries = ChargeRetries(metering, first_delay=0.001, outbox=outbox)
    assert retries.resume() == 0
    await retries.add(request("r1"))
    assert '"add"' in outbox.path.read_text()
    for _ in range(500):
        if not retries.waiting:
            break
        await asyncio.sleep(0.002)
    assert metering.sent == ["r1", "r1"]
    assert {"done": "r1"} in _entries(outbox.path)
    await retries.close()


async def test_what_a_stop_leaves_is_sent_by_the_next_start(tmp_path: Path) -> None:
    down = Metering(*(Unavailable(grpc.StatusCode.UNAVAILABLE, "down") for _ in range(5)))
    retries = ChargeRetries(down, first_delay=60.0, outbox=ChargeOutbox(tmp_path))
    retries.resume()
    await retries.add(request("r1"))
    await retries.close(last_attempt_seconds=0.5)  # its last attempt fails: left on disk
    up = Metering()
    sent: list[metering_pb2.ChargeRequest] = []

    async def recording(charge: metering_pb2.ChargeRequest) -> None:
        sent.append(charge)
        await up(charge)

    later = ChargeRetries(recording, outbox=ChargeOutbox(tmp_path))
    assert later.resume() == 1
    for _ in range(500):
        if not later.waiting:
            break
        await asyncio.sleep(0.002)
    assert [c.request_id for c in sent] == ["r1"]
    await later.close()


async def test_concurrent_adds_share_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = ChargeOutbox(tmp_path)
    outbox.open()
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    await asyncio.gather(*(outbox.add(request(f"r{n}")) for n in range(100)))
    # Each add returned after an fsync that began after its write; they shared a few.
    assert 1 <= len(fsyncs) <= 3
    assert outbox.path.read_text().count('"add"') == 100
    outbox.close()


async def test_the_file_is_compacted_while_the_gateway_runs(tmp_path: Path) -> None:
    outbox = ChargeOutbox(tmp_path, compact_after=4_000)
    outbox.open()
    largest = 0
    for n in range(300):  # steady traffic: each charge added, then recorded
        await outbox.add(request(f"r{n}"))
        if n % 100 != 7:  # three are never recorded
            outbox.done(f"r{n}")
        await asyncio.sleep(0)
        largest = max(largest, outbox.path.stat().st_size)
    await outbox.add(request("last"))
    # 300 charges' lines are ~40,000 bytes: the file never held more than the threshold
    # plus one compaction's worth, and still holds every charge not recorded.
    assert largest < 4_000 + 1_000
    assert outbox.waiting == 4
    outbox.close()
    again = ChargeOutbox(tmp_path)
    assert [r.request_id for r in again.open()] == ["r7", "r107", "r207", "last"]
    again.close()


async def test_with_an_outbox_a_fresh_charge_is_on_disk_then_sent_at_once(tmp_path: Path) -> None:
    metering = Metering()
    retries = ChargeRetries(metering, first_delay=60.0, outbox=ChargeOutbox(tmp_path))
    retries.resume()
    assert retries.durable
    await retries.add(request("r1"), fresh=True)
    assert '"add"' in (tmp_path / "charges-waiting.jsonl").read_text()
    for _ in range(500):  # sent without the 60 s retry delay
        if not retries.waiting:
            break
        await asyncio.sleep(0.002)
    assert metering.sent == ["r1"]
    assert {"done": "r1"} in _entries(tmp_path / "charges-waiting.jsonl")
    await retries.close()


def _entries(path: Path) -> list[object]:
    """The outbox's lines, parsed."""
    return [json.loads(line) for line in path.read_text().splitlines()]
