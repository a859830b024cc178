"""Redis access both services share: the client, the Lua scripts, and failure mapping.

The client is a standalone `redis.asyncio.Redis` or, with KEYLEASH_REDIS_CLUSTER=on, a
`redis.asyncio.cluster.RedisCluster`. Every key of a tenant carries the `{tenant}` hash tag
(keyspace.py), so each script call touches one slot and runs on one primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, TypeAlias, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from keyleash_core.errors import StoreUnavailable
from keyleash_core.redis.resp_link import RespLink
from keyleash_core.telemetry import STORE_ERRORS, store_span

T = TypeVar("T")

RedisClient: TypeAlias = aioredis.Redis | RedisCluster
"""What the services hold: one Redis server, or a Redis Cluster (KEYLEASH_REDIS_CLUSTER=on)."""

# A lost or slow Redis is the same thing to a caller: nothing was decided, retry later. On a
# cluster that includes a failover in progress (CLUSTERDOWN, TRYAGAIN, redirects redis-py gave up
# following) and a cluster it cannot reach or map (RedisClusterException: no node reachable,
# slots not covered). RedisClusterException is also redis-py refusing a call whose keys span
# slots: that fails closed too; tests/cluster/test_cluster.py keeps every script call in one slot.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,
    redis.exceptions.RedisClusterException,
    OSError,
    TimeoutError,
)


def create_redis(
    url: str,
    *,
    timeout_seconds: float,
    max_connections: int = 256,
    client_name: str | None = None,
    cluster: bool = False,
) -> RedisClient:
    """A client that never waits longer than `timeout_seconds` for Redis, so callers fail closed.

    cluster=True: a Redis Cluster client seeded from `url` (it discovers the other nodes), with
    the same timeouts and `max_connections` per node, and no retries: redis-py's default of 10,
    each after a topology refresh, made a call to a hung node take over 11 s at a 1 s timeout.
    A node that timed out or refused makes the client read the slot map again before the next
    call, so the caller's retry finds a promoted replica.
    """
    options: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "max_connections": max_connections,
        "decode_responses": False,
        "health_check_interval": 30,
        "client_name": client_name,
    }
    if cluster:
        return RedisCluster.from_url(url, retry=Retry(NoBackoff(), 0), **options)
    client: aioredis.Redis = aioredis.Redis.from_url(url, **options)
    return client


async def close_redis(client: RedisClient) -> None:
    """Closes the client and every connection it holds."""
    await client.aclose()
    if isinstance(client, RedisCluster):
        # redis-py's aclose does nothing while a failed call has left the client due for a new
        # topology read, yet its nodes may still hold connections: close those too.
        await client.nodes_manager.aclose()
        await client.nodes_manager.aclose("startup_nodes")


async def run_redis(operation: Callable[[], Awaitable[T]]) -> T:
    """Runs one Redis operation; connection trouble becomes StoreUnavailable (fail closed)."""
    try:
        return await operation()
    except REDIS_ERRORS as error:
        raise unavailable(error) from None


def unavailable(error: BaseException) -> StoreUnavailable:
    """What a caller sees of Redis trouble: UNAVAILABLE, counted in the store-error metric."""
    STORE_ERRORS.add(1, {"store": "redis"})
    return StoreUnavailable("redis", f"{type(error).__name__}: {error}")


async def ping(client: RedisClient) -> None:
    """PING; on a cluster every node answers (and the client learns the slot map)."""
    await run_redis(client.ping)


def script_source(name: str) -> str:
    """The text of lua/{name}.lua with each `--!include x` line replaced by lua/_x.lua: the
    one way the scripts share code (Redis runs each script on its own)."""
    folder = resources.files("keyleash_core.redis.lua")

    def included(match: re.Match[str]) -> str:
        return folder.joinpath(f"_{match.group(1)}.lua").read_text(encoding="utf-8")

    source = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return re.sub(r"^--!include (\w+)\n", included, source, flags=re.MULTILINE)


class Scripts:
    """The Lua scripts under keyleash_core/redis/lua, registered once per client.

    redis-py's Script runs EVALSHA and reloads the script on NOSCRIPT (after a Redis restart or
    SCRIPT FLUSH), so the hot path is one EVALSHA per call. On a cluster the reload is SCRIPT LOAD
    on every primary, so a restarted or newly promoted node gets it too.
    """

    def __init__(self, client: RedisClient) -> None:
        self.client = client
        # Pipelined script calls on one standalone Redis go over a thin link (resp_link.py);
        # a cluster, TLS or a Unix socket keep redis-py's pipelines.
        self._link: RespLink | None = None
        self._background: set[asyncio.Task[None]] = set()
        if not isinstance(client, RedisCluster):
            self._link = RespLink.for_client(client, on_lost=self._reset_pool)
        self._scripts: dict[str, AsyncScript] = {}
        for entry in resources.files("keyleash_core.redis.lua").iterdir():
            if entry.name.endswith(".lua") and not entry.name.startswith("_"):
                name = entry.name.removesuffix(".lua")
                self._scripts[name] = client.register_script(script_source(name))

    def __getitem__(self, name: str) -> AsyncScript:
        return self._scripts[name]

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts[name]
        with store_span(f"redis {name}"):
            return await run_redis(lambda: script(keys=keys, args=args))

    def _reset_pool(self) -> None:
        # The link lost Redis (a restart, a failover, a hang): redis-py's idle pooled
        # connections are as stale, and redis-py would find out only by failing a call on each.
        client = self.client
        if isinstance(client, aioredis.Redis):
            task = asyncio.ensure_future(client.connection_pool.disconnect(inuse_connections=False))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Closes the pipelined link (the client itself is closed by `close_redis`)."""
        if self._link is not None:
            await self._link.aclose()

    def register(self, name: str, source: str) -> AsyncScript:
        """Adds a script by name (the services' own come from keyleash_core/redis/lua)."""
        self._scripts[name] = self.client.register_script(source)
        return self._scripts[name]

    async def run_many(
        self,
        name: str,
        calls: Sequence[tuple[list[str], list[Any]]],
        *,
        return_errors: bool = False,
    ) -> list[Any]:
        """Runs the script once per (keys, args), pipelined: one round trip (one per node on a
        cluster). Each call stays atomic; calls on one node run in the order given.

        A script's own error (a Lua error) is raised, or with `return_errors` returned in its
        call's place, so that one bad call does not fail the others of a shared batch.
        Connection trouble raises StoreUnavailable for the whole batch.
        """
        script = self._scripts[name]
        client = self.client
        link = self._link
        if link is not None:
            results = await run_redis(lambda: _run_many_on_link(link, script, calls))
        elif len(calls) == 1:
            keys, args = calls[0]
            run_one = lambda: script(keys=keys, args=args)  # noqa: E731
            try:
                return [await run_redis(run_one)]
            except redis.exceptions.ResponseError as error:
                if isinstance(error, REDIS_ERRORS) or not return_errors:
                    raise
                return [error]
        elif isinstance(client, RedisCluster):
            results = await run_redis(lambda: _run_many_on_cluster(client, script, calls))
        else:
            results = await run_redis(lambda: _run_many_standalone(client, script, calls))
        return _checked(results, return_errors)

    @property
    def link_ready(self) -> bool:
        """A connected thin link: `start_many` sends at once."""
        return self._link is not None and self._link.ready

    def start_many(
        self,
        name: str,
        calls: Sequence[tuple[list[str], list[Any]]],
        deliver: Callable[[list[Any] | Exception], None],
    ) -> bool:
        """`run_many(..., return_errors=True)` without a task or an await: the calls are written
        on the link now and `deliver` gets the replies, or the error `run_many` would raise
        (StoreUnavailable for connection trouble), from the link's own callback. That saves a
        lone call three turns of the event loop. False, with nothing sent, when there is no
        `link_ready`: use `run_many` then."""
        link = self._link
        if link is None:
            return False
        script = self._scripts[name]

        def replied(outcome: list[Any] | BaseException) -> None:
            if isinstance(outcome, BaseException):
                deliver(unavailable(outcome))
            elif missing := _no_script(outcome):  # Redis lost its scripts: reload, then resend
                task = asyncio.ensure_future(
                    self._finish(link, script, calls, outcome, missing, deliver)
                )
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            else:
                try:
                    checked: list[Any] | Exception = _checked(outcome, return_errors=True)
                except StoreUnavailable as error:
                    checked = error
                deliver(checked)

        return link.submit(_evalshas(script, calls), replied)

    @staticmethod
    async def _finish(
        link: RespLink,
        script: AsyncScript,
        calls: Sequence[tuple[list[str], list[Any]]],
        results: list[Any],
        missing: list[int],
        deliver: Callable[[list[Any] | Exception], None],
    ) -> None:
        try:
            resent = await run_redis(lambda: _resend_missing(link, script, calls, results, missing))
            deliver(_checked(resent, return_errors=True))
        except Exception as error:  # handed to the waiting callers, as run_many would raise it
            deliver(error)


def _evalshas(script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
    return [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]


def _no_script(results: list[Any]) -> list[int]:
    return [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]


def _checked(results: list[Any], return_errors: bool) -> list[Any]:
    for result in results:
        if isinstance(result, REDIS_ERRORS):
            raise unavailable(result)  # e.g. a node read-only or loading: fail closed
        if isinstance(result, BaseException) and not return_errors:
            raise result
    return results


async def _run_many_on_link(
    link: RespLink, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]
) -> list[Any]:
    """EVALSHA per call in one write on the link; calls answered NOSCRIPT did not run, and are
    sent again once the script is loaded (so nothing is decided twice)."""
    results = await link.execute_many(_evalshas(script, calls))
    return await _resend_missing(link, script, calls, results, _no_script(results))


async def _resend_missing(
    link: RespLink,
    script: AsyncScript,
    calls: Sequence[tuple[list[str], list[Any]]],
    results: list[Any],
    missing: list[int],
) -> list[Any]:
    if missing:
        (loaded,) = await link.execute_many([("SCRIPT", "LOAD", script.script)])
        if isinstance(loaded, Exception):
            raise loaded
        script.sha = loaded.decode() if isinstance(loaded, bytes) else str(loaded)
        retried = await link.execute_many(
            [("EVALSHA", script.sha, len(calls[i][0]), *calls[i][0], *calls[i][1]) for i in missing]
        )
        for i, result in zip(missing, retried, strict=True):
            results[i] = result
    return results


async def _run_many_standalone(
    client: aioredis.Redis, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]
) -> list[Any]:
    """Raw EVALSHA per call, pipelined. redis-py's own pipelined scripts ask SCRIPT EXISTS before
    every pipeline, an extra round trip. A NOSCRIPT reply (Redis restarted or flushed its
    scripts) means that call did not run: the script is loaded and those calls sent again."""

    async def send(batch: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    results = await send(calls)
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:
        script.sha = await client.script_load(script.script)
        for i, result in zip(missing, await send([calls[i] for i in missing]), strict=True):
            results[i] = result
    return results


async def _run_many_on_cluster(
    client: RedisCluster, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]
) -> list[Any]:
    """A cluster pipeline refuses pipe.evalsha and never reloads a script, so: raw EVALSHA per
    call; the calls a node answered NOSCRIPT never ran there, and run again one by one once the
    script is loaded on every primary (so nothing is decided twice)."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
    except RedisCluster.ERRORS_ALLOW_RETRY:
        # A node is gone. Unlike a single command, a pipeline that fails without retries leaves
        # the slot map as it was: read it again now, so the next call finds a promoted replica.
        with contextlib.suppress(*REDIS_ERRORS):
            await client.nodes_manager.initialize()
        raise
    missing = [
        i for i, result in enumerate(results) if isinstance(result, redis.exceptions.NoScriptError)
    ]
    if missing:
        script.sha = await client.script_load(script.script)
        for index in missing:
            keys, args = calls[index]
            try:
                results[index] = await script(keys=keys, args=args)
            except redis.exceptions.ResponseError as error:
                results[index] = error
    return results
