"""The charges the gateway is still sending again (charge_retries.py), on its own disk.

With KEYLEASH_GATEWAY_STATE_DIR set, a charge Metering could not take is appended to
`charges-waiting.jsonl` there and fsynced before the agent gets its answer, and marked done
once Metering recorded or refused it. A gateway that starts reads back every charge not marked
done and sends it again (same request_id: Metering counts it once however many attempts reach
it), so such a charge survives the gateway process dying too. Without the variable the charges
wait in memory only (the gateway logs that at start).

One line per change, JSON: {"add": base64 of the serialized ChargeRequest} or {"done":
request_id}. A ChargeRequest holds ids, amounts and the vendor's transaction id, never a secret.
At start the file is replaced by one with only what is still waiting, so it stays small. One
gateway process per directory: a second is refused at start (an exclusive lock on
`gateway.lock`).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import logging
import os
from pathlib import Path

from google.protobuf.message import DecodeError

from keyleash.metering.v1 import metering_pb2
from keyleash_core.settings import SettingsError

log = logging.getLogger("keyleash.gateway")

FILE_NAME = "charges-waiting.jsonl"
LOCK_NAME = "gateway.lock"


class OutboxInUse(SettingsError):
    """Another gateway process holds this state directory."""


class ChargeOutbox:
    """Append-only record of the charges waiting to be sent again."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self._fd: int | None = None
        self._lock: int | None = None

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
        waiting = _waiting(self.path.read_bytes()) if self.path.exists() else []
        # Compacted by replacing the file: a crash at any point leaves the old or the new one.
        scratch = self.path.with_name(FILE_NAME + ".new")
        with scratch.open("wb") as out:
            out.write(b"".join(_add_line(request) for request in waiting))
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, self.path)
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        return waiting

    async def add(self, request: metering_pb2.ChargeRequest) -> None:
        """Durable on return (fsynced in a thread, off the event loop)."""
        fd = self._require()
        os.write(fd, _add_line(request))
        await asyncio.to_thread(os.fsync, fd)

    def done(self, request_id: str) -> None:
        """Not fsynced: lost, it only makes the next start send a recorded charge again, which
        Metering recognises by its request_id."""
        os.write(self._require(), json.dumps({"done": request_id}).encode() + b"\n")

    def close(self) -> None:
        for fd in (self._fd, self._lock):
            if fd is not None:
                os.close(fd)  # the lock's: releases it
        self._fd = self._lock = None

    def _require(self) -> int:
        if self._fd is None:
            raise RuntimeError("the charge outbox is not open")
        return self._fd


def _add_line(request: metering_pb2.ChargeRequest) -> bytes:
    encoded = base64.b64encode(request.SerializeToString()).decode("ascii")
    return json.dumps({"add": encoded}).encode() + b"\n"


def _waiting(content: bytes) -> list[metering_pb2.ChargeRequest]:
    added: dict[str, metering_pb2.ChargeRequest] = {}
    for line in content.splitlines():
        try:
            entry = json.loads(line)
            if "add" in entry:
                request = metering_pb2.ChargeRequest.FromString(base64.b64decode(entry["add"]))
                added.setdefault(request.request_id, request)
            elif "done" in entry:
                added.pop(str(entry["done"]), None)
        except (ValueError, TypeError, DecodeError):
            log.warning("skipped an unreadable line of the charge outbox (a torn write)")
    return list(added.values())
