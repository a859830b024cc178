"""What `keyleash up` says while it starts: one line per step on stderr, then its duration
("keyleash up: starting PostgreSQL ... done in 3.2 s"), so a first start (initdb, migrations)
is never silent."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from keyleash_core.errors import StoreUnavailable
from keyleash_core.postgres import apply_migrations, create_pool
from keyleash_core.stores import StartupError

PROG = "keyleash up"


def say(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


@contextmanager
def step(label: str) -> Iterator[None]:
    """Announces a step, then how long it took (nothing more when it fails: the error says)."""
    say(f"{label} ...")
    started = time.monotonic()
    yield
    say(f"{label}: done in {time.monotonic() - started:.1f} s")


async def migrate(database_url: str, timeout_seconds: float) -> list[str]:
    """Applies the pending migrations (the services would at start, silently); their names."""
    try:
        pool = await create_pool(database_url, timeout_seconds=timeout_seconds, min_size=1)
    except StoreUnavailable as error:
        detail = error.metadata.get("detail", "")
        raise StartupError(f"cannot reach Postgres at KEYLEASH_DATABASE_URL ({detail})") from None
    try:
        return await apply_migrations(pool)
    finally:
        await pool.close()
