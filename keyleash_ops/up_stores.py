"""The Redis and PostgreSQL `keyleash up` starts itself (keyleash_ops.devstores), data kept under
its state dir, and stopping them."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

from keyleash_ops.devstores import ManagedServer, start_postgres, start_redis
from keyleash_ops.up_steps import step


def start_own_stores(
    env: dict[str, str],
    state_dir: Path | None,
    own_redis: bool,
    own_postgres: bool,
    started: list[ManagedServer],
    check_stop: Callable[[], None],
) -> dict[str, str]:
    """Starts the Redis/PostgreSQL that no URL names, with their data under STATE; sets their
    URLs in `env` and returns them by store. `check_stop` raises when a stop was asked for
    (after each store: it is in `started`, so it will be stopped)."""
    embedded: dict[str, str] = {}
    if own_redis:
        assert state_dir is not None
        redis_dir = state_dir / "redis"
        with contextlib.suppress(OSError):  # its AOF holds key metadata: owner-only, like STATE
            redis_dir.mkdir(mode=0o700, exist_ok=True)
            redis_dir.chmod(0o700)
        with step(f"starting Redis (data in {redis_dir})"):
            redis = start_redis(redis_dir, persistent=True)
        started.append(redis)
        env["KEYLEASH_REDIS_URL"] = embedded["redis"] = redis.url
        check_stop()
    if own_postgres:
        assert state_dir is not None
        fresh = not (state_dir / "postgres" / "PG_VERSION").exists()
        with step(
            "creating and starting PostgreSQL (first start)" if fresh else "starting PostgreSQL"
        ):
            postgres = start_postgres(state_dir / "postgres", durable=True)
        started.append(postgres)
        env["KEYLEASH_DATABASE_URL"] = embedded["postgres"] = postgres.url
        check_stop()
    return embedded


def stop_stores(started: list[ManagedServer], prog: str) -> None:
    for server in reversed(started):  # postgres first: redis holds nothing postgres needs
        try:
            server.stop()
        except Exception as error:  # keep stopping the rest
            print(f"{prog}: stopping {server.name} failed: {error}", file=sys.stderr, flush=True)
