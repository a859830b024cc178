"""Postgres access both services share: the asyncpg pool and the versioned schema migrations."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, TypeVar

import asyncpg

from keyleash_core.errors import DeadlineExceeded, StoreUnavailable
from keyleash_core.telemetry import STORE_ERRORS, store_span

log = logging.getLogger("keyleash.postgres")

# Any two replicas starting at once serialize their migrations on this advisory lock.
MIGRATION_LOCK_ID = 0x6B65796C65617368  # "keyleash"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

T = TypeVar("T")

# The driver's ways of saying "the server is not there": all become StoreUnavailable.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    # A connection that died in the middle of a COPY is left mid-protocol; returning it to the
    # pool then fails with "cannot switch to state ..." (the pool terminates it). Seen when
    # Postgres was killed under group commits: nothing was committed, so it is UNAVAILABLE.
    asyncpg.exceptions.InternalClientError,
)
# Everything a failed Postgres call raises that means "unavailable", as one tuple (mypy cannot
# check a starred tuple in an except clause).
POSTGRES_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    asyncpg.exceptions.PostgresError,
)
_STARTUP_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *POSTGRES_ERRORS)


async def _lean_reset(con: asyncpg.Connection) -> None:
    """What a released connection needs before its next use. asyncpg's default reset sends
    "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL" on every release: one
    more round trip (and transaction) per query. Keyleash leaves no session state behind: no
    LISTEN, no SET outside a transaction, cursors only inside transactions, and the migration
    lock is released where it is taken. So only a transaction left open needs undoing."""
    if con.is_in_transaction():
        await con.execute("ROLLBACK")


async def create_pool(
    url: str, *, timeout_seconds: float, min_size: int = 2, max_size: int = 20
) -> asyncpg.Pool:
    """A pool that answers within `timeout_seconds`, or StoreUnavailable."""
    try:
        pool = await asyncio.wait_for(
            asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout_seconds,
                command_timeout=max(timeout_seconds * 5, 10.0),
                reset=_lean_reset,
            ),
            timeout=timeout_seconds * 3,
        )
    except _STARTUP_ERRORS as error:
        raise StoreUnavailable("postgres", f"{type(error).__name__}: {error}") from None
    assert pool is not None
    return pool


async def run_db(operation: Callable[[], Awaitable[T]]) -> T:
    """Runs one database operation, turning driver failures into the errors callers can act on."""
    try:
        with store_span("postgres"):
            return await operation()
    except (asyncpg.exceptions.QueryCanceledError, TimeoutError) as error:
        raise DeadlineExceeded(f"postgres did not answer in time: {error}") from None
    except CONNECTION_ERRORS as error:
        STORE_ERRORS.add(1, {"store": "postgres"})
        raise StoreUnavailable("postgres", f"{type(error).__name__}: {error}") from None


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Any]:
    """`async with transaction(pool) as con:` with driver failures mapped as in run_db."""
    try:
        with store_span("postgres transaction"):
            async with pool.acquire() as con, con.transaction():
                yield con
    except (asyncpg.exceptions.QueryCanceledError, TimeoutError) as error:
        raise DeadlineExceeded(f"postgres did not answer in time: {error}") from None
    except CONNECTION_ERRORS as error:
        STORE_ERRORS.add(1, {"store": "postgres"})
        raise StoreUnavailable("postgres", f"{type(error).__name__}: {error}") from None


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migrations/NNNN_name.sql, in version order."""
    found = []
    for entry in resources.files("keyleash_core.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def apply_migrations(pool: asyncpg.Pool) -> list[str]:
    """Applies every migration not yet applied, each in its own transaction; returns their names.

    Idempotent, and safe when several replicas start at once (session advisory lock).
    """
    applied_now: list[str] = []
    async with pool.acquire() as con:
        await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        try:
            await con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                row["version"] for row in await con.fetch("SELECT version FROM schema_migrations")
            }
            for version, name, sql in migration_files():
                if version in done:
                    continue
                async with con.transaction():
                    await con.execute(sql)
                    await con.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        version,
                        name,
                    )
                log.info("applied migration %s", name)
                applied_now.append(name)
            await con.execute("SELECT keyleash_ensure_partitions(now(), 3)")
            await con.execute(
                "SELECT keyleash_ensure_monthly_partitions("
                "'authorizations', 'decision_time', now(), 3)"
            )
        finally:
            await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now
