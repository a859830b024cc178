"""What `keyleash up` keeps and checks on this machine: the state dir, the development pepper
(created once, 0600), a fresh development admin token per start, and whether a listen address
is free before the stores are started."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import secrets
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

ROOT_STATE_DIR = Path("/var/lib/keyleash")
ADMIN_TOKEN_PREFIX = "kl_admin_"


class UpError(Exception):
    """`keyleash up` cannot go on; the message is one line saying what to fix."""


def default_state_dir(env: Mapping[str, str], euid: int) -> Path:
    """~/.local/state/keyleash (XDG_STATE_HOME respected), or /var/lib/keyleash for root."""
    if euid == 0:
        return ROOT_STATE_DIR
    xdg = env.get("XDG_STATE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative paths
        return Path(xdg) / "keyleash"
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".local" / "state" / "keyleash"


def ensure_state_dir(state_dir: Path, *, for_postgres: bool) -> Path:
    state_dir = state_dir.expanduser().resolve()
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if for_postgres and os.geteuid() == 0:
            # Postgres runs as an unprivileged user that must pass through STATE to STATE/postgres.
            # Search permission only: the pepper file stays 0600 and STATE stays unlistable.
            mode = stat.S_IMODE(state_dir.stat().st_mode)
            if not mode & stat.S_IXOTH:
                state_dir.chmod(mode | stat.S_IXOTH)
    except OSError as error:
        raise UpError(f"cannot use state dir {state_dir}: {error.strerror or error}") from None
    return state_dir


def load_or_create_pepper(path: Path) -> str:
    """The development pepper in `path`, created once (0600, 32 random bytes, urlsafe base64)."""
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise UpError(f"cannot read {path}: {error.strerror or error}") from None
    else:
        if len(existing) < 16:
            raise UpError(
                f"{path} does not hold a pepper of at least 16 characters; "
                "restore it or set KEYLEASH_KEY_PEPPER"
            )
        return existing
    pepper = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(pepper + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(scratch, path)  # atomic and exclusive: a concurrent start keeps one pepper
        except FileExistsError:
            return load_or_create_pepper(path)
    except OSError as error:
        raise UpError(f"cannot create {path}: {error.strerror or error}") from None
    finally:
        scratch.unlink(missing_ok=True)
    return pepper


def new_admin_token() -> tuple[str, str]:
    """A fresh development admin token and its SHA-256 hex digest."""
    token = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def check_bindable(kind: str, address: str) -> None:
    """Raise OSError when `address`'s port is taken (port 0 and odd addresses are left to grpc).

    Checked before the stores start, so a busy port fails in milliseconds with one clean line
    instead of after Postgres has started and with grpc's own log line on stderr.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) == 0:
        return
    try:
        candidates = socket.getaddrinfo(
            host.strip("[]") or None,
            int(port_text),
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )
    except OSError:
        return  # unresolvable: grpc reports it
    for family, kind_, proto, _, sockaddr in candidates:
        with socket.socket(family, kind_, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
            try:
                probe.bind(sockaddr)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise OSError(
                        f"{kind} cannot listen on {address}: address already in use "
                        f"(pass --{kind}-listen or set KEYLEASH_{kind.upper()}_LISTEN)"
                    ) from None
