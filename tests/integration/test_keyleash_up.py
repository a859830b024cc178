"""`keyleash up` as a user runs it: a real process with its own Redis and Postgres.

Each test starts `python -m keyleash_ops.cli up` (what the `keyleash` console script runs) with a
state dir under pytest's tmp_path and listen ports 0, reads the banner for the bound ports and
store URLs, talks to the servers over real channels, then sends SIGINT and checks the process
exits 0 and leaves no Redis/Postgres behind. Every subprocess has a deadline and is killed in a
`finally`, so a hang fails the test instead of the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_ops.up_state import default_state_dir
from tests.typed_stubs import health_stub, reflection_stub

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0  # first start runs initdb
STOP_TIMEOUT = 20.0
VAULT_SERVICE = "keyleash.vault.v1.VaultService"
METERING_SERVICE = "keyleash.metering.v1.MeteringService"


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without any KEYLEASH_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")}
    env["KEYLEASH_APPROVALS_LISTEN"] = "127.0.0.1:0"  # never a fixed port in tests
    env.update(extra)
    return env


def _command(state_dir: Path, *, metering_flag: bool = True) -> list[str]:
    command = [
        sys.executable, "-m", "keyleash_ops.cli", "up",
        "--state-dir", str(state_dir),
        "--vault-listen", "127.0.0.1:0",
        "--gateway-listen", "127.0.0.1:0",
        "--usage-hooks-listen", "127.0.0.1:0",
        "--console-listen", "127.0.0.1:0",
    ]  # fmt: skip
    if metering_flag:
        command += ["--metering-listen", "127.0.0.1:0"]
    return command


@dataclass
class Banner:
    vault: str
    metering: str
    redis_url: str
    postgres_url: str
    admin_token: str
    text: str


class Up:
    """A running `keyleash up` process and what its banner said."""

    def __init__(self, state_dir: Path, stderr_path: Path) -> None:
        self.state_dir = state_dir
        self._stderr_file = stderr_path.open("w")
        self.proc = subprocess.Popen(
            _command(state_dir),
            cwd=REPO,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,  # a file, so a chatty stderr can never block the process
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr_path = stderr_path

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def banner(self, timeout: float = START_TIMEOUT) -> Banner:
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no banner within {timeout}s; stdout so far: {''.join(lines)!r}")
            if line is None:
                pytest.fail(
                    f"keyleash up exited ({self.proc.wait(5)}) before its banner; "
                    f"stdout {''.join(lines)!r}, stderr {self.stderr_path.read_text()!r}"
                )
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        text = "".join(lines)

        def find(pattern: str) -> str:
            match = re.search(pattern, text, re.MULTILINE)
            assert match, f"{pattern!r} not in banner:\n{text}"
            return match.group(1)

        return Banner(
            vault=find(r"vault listening on (\S+:\d+)$"),
            metering=find(r"metering listening on (\S+:\d+)$"),
            redis_url=find(r"redis at (redis://\S+)$"),
            postgres_url=find(r"postgres at (postgresql://\S+)$"),
            admin_token=find(r"^\s+(kl_admin_\S+)$"),
            text=text,
        )

    def interrupt(self) -> int:
        """SIGINT, then the exit code (the test fails if it takes longer than STOP_TIMEOUT)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"keyleash up did not exit within {STOP_TIMEOUT}s of SIGINT")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr_file.close()


@contextlib.contextmanager
def keyleash_up(state_dir: Path, tmp_path: Path, name: str = "up") -> Iterator[Up]:
    up = Up(state_dir, tmp_path / f"{name}.stderr")
    try:
        yield up
    finally:
        up.close()
        _stop_leftovers(state_dir)


def _processes_using(state_dir: Path) -> dict[int, str]:
    """Live processes whose command line or working directory lies in `state_dir`.

    redis-server rewrites its title to "redis-server 127.0.0.1:PORT", but runs in STATE/redis;
    the postmaster keeps `-D STATE/postgres` in its command line and also runs in its data dir.
    """
    needle = str(state_dir.resolve())
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone, or a zombie (no cwd, empty cmdline): not running
            continue
        if needle in cmdline or cwd == needle or cwd.startswith(needle + os.sep):
            found[int(entry.name)] = cmdline.strip()
    return found


def _stop_leftovers(state_dir: Path) -> None:
    """Clean up after a failed test: never leave servers behind for the rest of the suite."""
    for pid in _processes_using(state_dir):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _assert_no_leftovers(state_dir: Path) -> None:
    deadline = time.monotonic() + 5.0
    while (left := _processes_using(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left running: {left}"


def _check_serving(target: str, service: str) -> None:
    with grpc.insecure_channel(target) as channel:
        health = health_stub(channel)
        for name in ("", service):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, (target, name)
        reflection = reflection_stub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = reflection.ServerReflectionInfo(iter([request]), timeout=10)
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert service in names, names


def _list_keys_code(target: str, token: str) -> grpc.StatusCode:
    with grpc.insecure_channel(target) as channel:
        stub_class: Any = vault_pb2_grpc.VaultServiceStub  # generated without type hints
        stub = stub_class(channel)
        try:
            stub.ListKeys(
                vault_pb2.ListKeysRequest(tenant_id="t-up-smoke", page_size=1),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
        return grpc.StatusCode.OK


async def _sql(url: str, statement: str) -> object:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


@pytest.mark.timeout(180)
def test_up_serves_both_services_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with keyleash_up(state, tmp_path) as up:
        banner = up.banner()
        _check_serving(banner.vault, VAULT_SERVICE)
        _check_serving(banner.metering, METERING_SERVICE)
        assert "grpcurl -plaintext" in banner.text
        # The printed development admin token is an admin credential; a made-up one is not.
        assert _list_keys_code(banner.vault, "kl_admin_not-the-printed-one") == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert _list_keys_code(banner.vault, banner.admin_token) not in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert _processes_using(state), "expected the embedded Redis/Postgres to be running"
        # A first start says what it does, step by step, each with how long it took.
        steps = up.stderr_path.read_text()
        for label in ("starting Redis", "creating and starting PostgreSQL (first start)",
                      "applying database migrations", "starting vault", "starting metering"):  # fmt: skip
            assert re.search(rf"keyleash up: {re.escape(label)}.*: done in \d+\.\d s", steps), steps
        assert "keyleash up: applied 0001_keys.sql" in steps

        assert up.interrupt() == 0
        assert "Traceback" not in up.stderr_path.read_text()
    _assert_no_leftovers(state)
    assert (state / "redis").is_dir() and (state / "postgres" / "PG_VERSION").is_file()
    pepper = state / "pepper"
    assert pepper.stat().st_mode & 0o777 == 0o600
    assert banner.admin_token not in pepper.read_text()


@pytest.mark.timeout(240)
def test_restart_keeps_postgres_data_and_pepper(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with keyleash_up(state, tmp_path, "first") as up:
        first = up.banner()
        asyncio.run(_sql(first.postgres_url, "CREATE TABLE up_restart_marker (id int)"))
        asyncio.run(_sql(first.postgres_url, "INSERT INTO up_restart_marker VALUES (42)"))
        assert up.interrupt() == 0
    _assert_no_leftovers(state)
    pepper = (state / "pepper").read_text()

    with keyleash_up(state, tmp_path, "second") as up:
        second = up.banner()
        restarted = up.stderr_path.read_text()
        assert "keyleash up: starting PostgreSQL: done in" in restarted
        assert "keyleash up: schema up to date" in restarted
        value = asyncio.run(_sql(second.postgres_url, "SELECT id FROM up_restart_marker"))
        assert value == 42
        assert second.admin_token != first.admin_token  # a new development token every start
        assert up.interrupt() == 0
    _assert_no_leftovers(state)
    assert (state / "pepper").read_text() == pepper


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("unreachable", "variable"),
    [
        (
            {
                "KEYLEASH_REDIS_URL": "redis://127.0.0.1:1/0",
                "KEYLEASH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x",
            },
            "KEYLEASH_",
        ),
        # Only Postgres is broken: the Redis that `up` started for itself must be stopped again.
        ({"KEYLEASH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}, "KEYLEASH_DATABASE_URL"),
    ],
    ids=["both-unreachable", "postgres-unreachable"],
)
def test_unreachable_store_exits_2_with_one_line(
    tmp_path: Path, unreachable: dict[str, str], variable: str
) -> None:
    state = tmp_path / "state"
    started = time.monotonic()
    try:
        result = subprocess.run(
            _command(state),
            cwd=REPO,
            env=_env(**unreachable),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        _stop_leftovers(state)
    assert time.monotonic() - started < 30
    assert result.returncode == 2, (result.stdout, result.stderr)
    # The steps started so far ("... ..." / "...: done in 0.1 s"), then one line saying why.
    lines = [
        line for line in result.stderr.strip().splitlines()
        if not line.endswith(" ...") and not re.search(r": done in \d+\.\d s$", line)
    ]  # fmt: skip
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keyleash up: ") and result.stderr.strip().endswith(lines[0])
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    _assert_no_leftovers(state)


def test_console_script_help_names_the_root_state_dir() -> None:
    script = Path(sys.executable).with_name("keyleash")
    assert script.exists(), "the keyleash console script is missing: pip install --no-deps -e ."
    result = subprocess.run(
        [str(script), "up", "--help"],
        cwd="/",  # not the repo: the installed package must be importable on its own
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--state-dir" in result.stdout
    assert "/var/lib/keyleash" in result.stdout


@pytest.mark.timeout(60)
def test_busy_port_from_env_exits_2_before_starting_stores(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            result = subprocess.run(
                _command(state, metering_flag=False),  # so KEYLEASH_METERING_LISTEN applies
                cwd=REPO,
                env=_env(KEYLEASH_METERING_LISTEN=f"127.0.0.1:{port}"),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
            )
        finally:
            _stop_leftovers(state)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and "KEYLEASH_METERING_LISTEN" in result.stderr
    assert not (state / "postgres").exists() and not (state / "redis").exists()


def test_default_state_dir() -> None:
    assert default_state_dir({"HOME": "/root"}, 0) == Path("/var/lib/keyleash")
    home = {"HOME": "/home/u"}
    assert default_state_dir(home, 1000) == Path("/home/u/.local/state/keyleash")
    assert default_state_dir({**home, "XDG_STATE_HOME": "/xdg"}, 1000) == Path("/xdg/keyleash")
    # A relative XDG_STATE_HOME is invalid per the XDG spec and ignored.
    relative = {**home, "XDG_STATE_HOME": "state"}
    assert default_state_dir(relative, 1000) == Path("/home/u/.local/state/keyleash")
