"""Pipelined script calls (Scripts.run_many) and auto-pipelining (ScriptBatcher), on the suite's
Redis (a Redis Cluster in the cluster run)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from keyleash_core.errors import StoreUnavailable
from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.redis.script_pipeline import ScriptBatcher
from keyleash_core.redis.scripts import RedisClient, Scripts, create_redis

# Appends ARGV[1] to a list and answers the list's length: shows order and exactly-once.
APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"
FAIL_ON_BAD = "if ARGV[1] == 'bad' then return redis.error_reply('ERR bad input') end return 1"


@pytest.fixture
def list_key() -> str:
    return "kl:{test-" + uuid.uuid4().hex[:8] + "}:list"


@pytest.fixture
async def scripts_with() -> AsyncIterator[Callable[..., Scripts]]:
    """Makes Scripts on a client with extra scripts registered; closes their links after."""
    made: list[Scripts] = []

    def make(client: RedisClient, **sources: str) -> Scripts:
        scripts = Scripts(client)
        for name, source in sources.items():
            scripts.register(name, source)
        made.append(scripts)
        return scripts

    yield make
    for scripts in made:
        await scripts.aclose()


async def test_concurrent_calls_share_pipelines_and_keep_order(
    redis_client: RedisClient,
    list_key: str,
    monkeypatch: pytest.MonkeyPatch,
    scripts_with: Callable[..., Scripts],
) -> None:
    scripts = scripts_with(redis_client, append=APPEND)
    await redis_client.script_load(APPEND)
    batcher = ScriptBatcher(scripts, "append")
    pipelines = count_pipelines(monkeypatch)
    replies = await asyncio.gather(*(batcher(ScriptCall([list_key], [str(i)])) for i in range(600)))
    # Every call ran once, in call order; 600 calls made in one turn of the loop: 3 trips.
    assert replies == list(range(1, 601))
    assert await redis_client.lrange(list_key, 0, -1) == [str(i).encode() for i in range(600)]
    assert pipelines == [256, 256, 88]


def count_pipelines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each pipeline sent, whether through run_many or start_many (the link's)."""
    pipelines: list[int] = []
    run_many, start_many = Scripts.run_many, Scripts.start_many

    async def counting_run(
        self: Scripts, name: str, calls: Sequence[tuple[list[str], list[Any]]], **options: Any
    ) -> list[Any]:
        pipelines.append(len(calls))
        return await run_many(self, name, calls, **options)

    def counting_start(
        self: Scripts, name: str, calls: Sequence[tuple[list[str], list[Any]]], deliver: Any
    ) -> bool:
        started = start_many(self, name, calls, deliver)
        if started:
            pipelines.append(len(calls))
        return started

    monkeypatch.setattr(Scripts, "run_many", counting_run)
    monkeypatch.setattr(Scripts, "start_many", counting_start)
    return pipelines


async def test_noscript_in_a_pipeline_loads_the_script_and_runs_each_call_once(
    redis_client: RedisClient, list_key: str, scripts_with: Callable[..., Scripts]
) -> None:
    # A script Redis has never seen: every call answers NOSCRIPT first, then runs once.
    scripts = scripts_with(redis_client, append=APPEND + " -- " + uuid.uuid4().hex)
    calls = [([list_key], [str(i)]) for i in range(5)]
    assert await scripts.run_many("append", calls) == [1, 2, 3, 4, 5]
    assert await redis_client.llen(list_key) == 5


async def test_an_error_reaches_only_its_own_caller(
    redis_client: RedisClient, list_key: str, scripts_with: Callable[..., Scripts]
) -> None:
    batcher = ScriptBatcher(scripts_with(redis_client, fail_on_bad=FAIL_ON_BAD), "fail_on_bad")
    results = await asyncio.gather(
        batcher(ScriptCall([list_key], ["ok"])),
        batcher(ScriptCall([list_key], ["bad"])),
        batcher(ScriptCall([list_key], ["ok"])),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert "bad input" in str(results[1])


async def test_a_lost_connection_fails_every_waiting_caller_closed(
    scripts_with: Callable[..., Scripts],
) -> None:
    # Nothing listens on port 1; the client is configured as the services configure theirs.
    client = create_redis("redis://127.0.0.1:1", timeout_seconds=0.5)
    batcher = ScriptBatcher(scripts_with(client, append=APPEND), "append")
    results = await asyncio.gather(
        *(batcher(ScriptCall(["kl:{t}:l"], [str(i)])) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    await client.aclose()
