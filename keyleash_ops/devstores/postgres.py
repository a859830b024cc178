"""One PostgreSQL server process (Debian's binaries, or the ones pgserver ships), run as an
unprivileged user when the caller is root."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from keyleash_ops.devstores.processes import (
    LIVE,
    SOCKET_PATH_MAX,
    DevStoreError,
    ManagedServer,
    claim_port,
    forget,
    log_tail,
    pid_alive,
    sigkill_tree,
)


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
    # The first error line is the cause; the last is often only initdb's clean-up after it.
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    detail = "; ".join(dict.fromkeys(errors[:1] + errors[-1:])) if errors else ""
    detail = detail or (output.splitlines()[-1] if output else f"exit code {proc.returncode}")
    raise DevStoreError(f"{what} failed: {detail}" + (f" ({log_tail(log)})" if log else ""))


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
        if not first.isdigit() or not pid_alive(int(first)):
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
        if len(sock_dir) + len("/.s.PGSQL.65535") > SOCKET_PATH_MAX:
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
        LIVE.append(self)
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
                sigkill_tree(pid)
        forget(self)

    def kill(self) -> None:
        if (pid := self._live_pid()) is not None:
            sigkill_tree(pid)  # backends too: orphans would keep the port and shared memory
        forget(self)

    def is_running(self) -> bool:
        return self._live_pid() is not None


def start_postgres(
    data_dir: Path, *, port: int | None = None, durable: bool = True, database: str = "keyleash"
) -> ManagedServer:
    """Start PostgreSQL on 127.0.0.1 (initdb on first use) and make sure `database` exists.

    durable=False turns off fsync, synchronous_commit and full_page_writes: for tests only.
    """
    bin_dir = _find_pg_bin()
    port = claim_port(port)
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
