"""The charges the gateway has not seen Metering record yet (charge_retries.py), on its own disk.

With KEYLEASH_GATEWAY_STATE_DIR set, every charge is appended to `charges-waiting.jsonl` there
and fsynced before the agent gets its answer, then sent to Metering in the background and
marked done once Metering recorded or refused it. A gateway that starts reads back every charge
not marked done and sends it again (same request_id: Metering counts it once however many
attempts reach it), so a charge survives the gateway process dying too. Without the variable
the gateway waits for Metering before answering, and charges it must send again wait in memory
only (the gateway logs that at start).

Charges appended while an fsync runs share the next one (a group commit: one fsync per batch of
concurrent calls, not per call). One line per change, JSON: {"add": base64 of the serialized
ChargeRequest} or {"done": request_id}. A ChargeRequest holds ids, amounts and the vendor's
transaction id, never a secret. The file is replaced by one holding only what is still waiting
at start and whenever it has grown past `compact_after` bytes (and twice what is waiting), so
it stays small under steady traffic. One gateway process per directory: a second is refused at
start (an exclusive lock on `gateway.lock`).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import logging
import os
from pathlib import Path

import orjson
from google.protobuf.message import DecodeError

from keyleash.metering.v1 import metering_pb2
from keyleash_core.settings import SettingsError

log = logging.getLogger("keyleash.gateway")

FILE_NAME = "charges-waiting.jsonl"
LOCK_NAME = "gateway.lock"
COMPACT_AFTER_BYTES = 4 << 20  # ~10,000 calls' lines: a rewrite of what waits, ~1 ms


class OutboxInUse(SettingsError):
    """Another gateway process holds this state directory."""


class ChargeOutbox:
    """Append-only record of the charges not yet recorded by Metering."""

    def __init__(self, directory: Path, *, compact_after: int = COMPACT_AFTER_BYTES) -> None:
        self.path = directory / FILE_NAME
        self._compact_after = compact_after
        self._fd: int | None = None
        self._lock: int | None = None
        self._waiting: dict[str, metering_pb2.ChargeRequest] = {}
        self._size = 0  # bytes in the file now
        self._compact_at = compact_after
        self._next_sync: asyncio.Future[None] | None = None  # the group the next fsync covers
        self._syncing = False
        self._flusher: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs

    def open(self) -> list[metering_pb2.ChargeRequest]:
        """Locks the directory and returns the charges still waiting (oldest first); the file
        is replaced by one holding just those."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        lock = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise OutboxInUse(
                f"another gateway uses {directory} (KEYLEASH_GATEWAY_STATE_DIR)"
            ) from None
        self._lock = lock
        left = _waiting(self.path.read_bytes()) if self.path.exists() else []
        self._waiting = {request.request_id: request for request in left}
        self._compact()
        return left

    @property
    def waiting(self) -> int:
        """Charges added and not marked done."""
        return len(self._waiting)

    async def add(self, request: metering_pb2.ChargeRequest) -> None:
        """Durable on return: fsynced off the event loop, in one fsync with the other charges
        added meanwhile."""
        line = _add_line(request)
        os.write(self._require(), line)
        self._size += len(line)
        self._waiting[request.request_id] = request
        await asyncio.shield(self._sync())

    def done(self, request_id: str) -> None:
        """Not fsynced: lost, it only makes the next start send a recorded charge again, which
        Metering recognises by its request_id."""
        line = orjson.dumps({"done": request_id}) + b"\n"
        os.write(self._require(), line)
        self._size += len(line)
        self._waiting.pop(request_id, None)
        if self._size >= self._compact_at and not self._syncing:
            self._sync().add_done_callback(_retrieve)  # nobody waits on this one

    def _sync(self) -> asyncio.Future[None]:
        """The fsync (or compaction) that will cover everything written so far."""
        if self._next_sync is None:
            self._next_sync = asyncio.get_running_loop().create_future()
            if not self._syncing:
                self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return self._next_sync

    async def _flush(self) -> None:
        self._syncing = True
        try:
            while self._next_sync is not None:
                group, self._next_sync = self._next_sync, None
                try:
                    if self._size >= self._compact_at:
                        self._compact()  # synchronous: what waits now, in one new file
                    else:
                        await asyncio.to_thread(os.fsync, self._require())
                except (OSError, RuntimeError) as error:
                    group.set_exception(error)
                else:
                    group.set_result(None)
        finally:
            self._syncing = False

    def _compact(self) -> None:
        """Replaces the file by one holding just what waits: a crash at any point leaves the
        old file or the new one, each with every waiting charge."""
        content = b"".join(_add_line(request) for request in self._waiting.values())
        scratch = self.path.with_name(FILE_NAME + ".new")
        with scratch.open("wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, self.path)
        directory_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._size = len(content)
        self._compact_at = max(self._compact_after, 2 * len(content))

    def close(self) -> None:
        for fd in (self._fd, self._lock):
            if fd is not None:
                os.close(fd)  # the lock's: releases it
        self._fd = self._lock = None

    def _require(self) -> int:
        if self._fd is None:
            raise RuntimeError("the charge outbox is not open")
        return self._fd


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        log.warning("charge outbox not compacted: %s", error)


def _add_line(request: metering_pb2.ChargeRequest) -> bytes:
    encoded = base64.b64encode(request.SerializeToString()).decode("ascii")
    return orjson.dumps({"add": encoded}) + b"\n"


def _waiting(content: bytes) -> list[metering_pb2.ChargeRequest]:
    added: dict[str, metering_pb2.ChargeRequest] = {}
    for line in content.splitlines():
        try:
            entry = orjson.loads(line)
            if "add" in entry:
                request = metering_pb2.ChargeRequest.FromString(base64.b64decode(entry["add"]))
                added.setdefault(request.request_id, request)
            elif "done" in entry:
                added.pop(str(entry["done"]), None)
        except (ValueError, TypeError, DecodeError):
            log.warning("skipped an unreadable line of the charge outbox (a torn write)")
    return list(added.values())
