"""Server processes the caller owns: free loopback ports (never the shared 6379/5432), log
tails, and stopping whatever is still running at exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

STANDARD_PORTS = frozenset({5432, 6379})  # the shared services; never ours
PORT_RELEASE_WAIT = 5.0  # restart after kill: the dying process may hold the port briefly
SOCKET_PATH_MAX = 107  # sun_path limit; postgres fails to start if its socket path is longer
CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000 (its cluster bus)


class DevStoreError(Exception):
    """A dev store could not be found, started or stopped; the message says what to do."""


LIVE: list[ManagedServer] = []  # servers we started and have not stopped, for the atexit hook


@dataclass(eq=False)  # identity semantics: each instance is a handle on one process
class ManagedServer(ABC):
    """A Redis or PostgreSQL server process started by this module."""

    name: str
    url: str
    port: int
    data_dir: Path

    @abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully, falling back to SIGKILL after `timeout`; a no-op if not running."""

    @abstractmethod
    def kill(self) -> None:
        """SIGKILL the server immediately (fault tests); the data dir is left as it is."""

    @abstractmethod
    def is_running(self) -> bool:
        """Whether the server process is alive."""

    def restart(self) -> None:
        """Start again on the same port and data dir (after stop or kill; stops first if up)."""
        self.stop()
        claim_port(self.port, wait=PORT_RELEASE_WAIT)
        self._launch()

    @abstractmethod
    def _launch(self) -> None:
        """Start the server process on self.port with self.data_dir."""


def find_free_port() -> int:
    """Return a currently free 127.0.0.1 TCP port chosen by the kernel (never 5432/6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in STANDARD_PORTS:
            return port


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like the servers themselves, so TIME_WAIT leftovers don't count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def claim_port(port: int | None, wait: float = 0.0) -> int:
    """Pick a free port, or check the requested one is free (waiting up to `wait` seconds)."""
    if port is None:
        return find_free_port()
    if port in STANDARD_PORTS:
        raise DevStoreError(f"port {port} belongs to the machine's shared service; use another")
    deadline = time.monotonic() + wait
    while not port_free(port):
        if time.monotonic() >= deadline:
            raise DevStoreError(f"port {port} is in use")
        time.sleep(0.1)
    return port


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"no log at {path}"
    tail = " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
    return f"log {path}: {tail or '(empty)'}"


def forget(server: ManagedServer) -> None:
    if server in LIVE:
        LIVE.remove(server)


@atexit.register
def stop_all() -> None:
    for server in list(LIVE):
        with contextlib.suppress(Exception):  # best effort: one failure must not strand the rest
            server.stop(timeout=5.0)


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    # Zombies count as dead: our PID 1 may never reap an orphaned, killed postmaster.
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def sigkill_tree(pid: int) -> None:
    """SIGKILL pid and its children, then wait until they are gone so the port is free."""
    # List the children first: once the parent dies they are reparented and unfindable.
    kids = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (proc_stat(int(p.name)) or ["", ""])[1] == str(pid)
    ]
    for victim in [pid, *kids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + PORT_RELEASE_WAIT
    while any(pid_alive(v) for v in [pid, *kids]) and time.monotonic() < deadline:
        time.sleep(0.05)
