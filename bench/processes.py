"""Processes the gateway benchmarks start: free ports, child processes, Vault and Metering
(`keyleash up`, or each its own process), and a py-spy beside a run."""

from __future__ import annotations

import base64
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import system


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(*argv: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: {url} did not come up")


def read_banner(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    text = ""
    for line in proc.stdout:
        text += line
        if "Ctrl-C to stop." in line:
            break
    found = {
        "vault": re.search(r"vault listening on (\S+)", text),
        "metering": re.search(r"metering listening on (\S+)", text),
        "token": re.search(r"^\s+(kl_admin_\S+)$", text, re.MULTILINE),
    }
    if not all(found.values()):
        raise SystemExit(f"bench: no banner from keyleash up:\n{text}")
    return {name: match.group(1) for name, match in found.items() if match}


@contextmanager
def profiled(pid: int | None, seconds: float, out: Path) -> Iterator[None]:
    """py-spy on `pid` (and its children) while the block runs; nothing when pid is None."""
    if pid is None:
        yield
        return
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
         "--subprocesses", "--format", "raw", "--rate", "250",
         "--duration", str(max(1, int(seconds))), "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches before the load starts
    try:
        yield
    finally:
        spy.wait(seconds + 30)


@contextmanager
def keyleash_services(
    shape: str, env: dict[str, str], state: Path
) -> Iterator[tuple[dict[str, str], list[int]]]:
    """Vault and Metering: (their addresses and the admin token, the pids whose CPU is
    Keyleash's). "processes": each its own process, as compose runs them; "up": `keyleash
    up`, both in one process (with console, approvals and alerts in the same event loop)."""
    if shape == "up":
        with process(sys.executable, "-m", "keyleash_ops.cli", "up", "--state-dir", str(state),
                     "--vault-listen", "127.0.0.1:0", "--metering-listen", "127.0.0.1:0",
                     "--gateway-listen", "127.0.0.1:0", env=env) as up:  # fmt: skip
            yield read_banner(up), [up.pid]  # its tree: the stores it started too
        return
    sut = system.start_system(None, None)
    sut.env["KEYLEASH_SERVICE_TOKEN_SHA256"] = env["KEYLEASH_SERVICE_TOKEN_SHA256"]
    sut.env["KEYLEASH_SECRETS_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    try:
        vault = sut.start_service("vault", "vault_service", {})
        metering = sut.start_service("metering", "metering_service", {})
        banner = {"vault": vault.address, "metering": metering.address, "token": sut.admin_token}
        yield banner, [pid for pid, _tree in sut.cpu_pids().values()]
    finally:
        sut.stop()
