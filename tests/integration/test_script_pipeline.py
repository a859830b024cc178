"""Auto-pipelining of script calls (keyleash_core.script_pipeline) against the suite's Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from keyleash_core import script_pipeline
from keyleash_core.errors import StoreUnavailable
from keyleash_core.redis_store import create_redis
from keyleash_core.script_call import ScriptCall
from keyleash_core.script_pipeline import ScriptBatcher, run_script_calls

# Appends ARGV[1] to a list and answers the list's length: shows order and exactly-once.
APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"
FAIL_ON_BAD = "if ARGV[1] == 'bad' then return redis.error_reply('ERR bad input') end return 1"


@pytest.fixture
def list_key() -> str:
    return "kl:{test-" + uuid.uuid4().hex[:8] + "}:list"


async def test_concurrent_calls_share_pipelines_and_keep_order(
    redis_client: aioredis.Redis, list_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = redis_client.register_script(APPEND)
    await redis_client.script_load(APPEND)
    batcher = ScriptBatcher(redis_client, script, "append")
    pipelines: list[int] = []

    async def counting(client: aioredis.Redis, script: Any, calls: Any) -> list[Any]:
        pipelines.append(len(calls))
        return await run_script_calls(client, script, calls)

    monkeypatch.setattr(script_pipeline, "run_script_calls", counting)
    before = await redis_client.info("commandstats")
    replies = await asyncio.gather(*(batcher(ScriptCall([list_key], [str(i)])) for i in range(600)))
    after = await redis_client.info("commandstats")
    # Every call ran once, in call order.
    assert replies == list(range(1, 601))
    assert await redis_client.lrange(list_key, 0, -1) == [str(i).encode() for i in range(600)]
    evalsha_before = before.get("cmdstat_evalsha", {}).get("calls", 0)
    sent = after["cmdstat_evalsha"]["calls"] - evalsha_before
    assert sent == 600
    assert pipelines == [256, 256, 88]  # 600 calls made in one turn of the loop: 3 trips
    # No SCRIPT EXISTS round trip per pipeline (redis-py's own pipelined scripts do one).
    assert after.get("cmdstat_script|exists", {}).get("calls", 0) == before.get(
        "cmdstat_script|exists", {}
    ).get("calls", 0)


async def test_noscript_in_a_pipeline_loads_the_script_and_runs_each_call_once(
    redis_client: aioredis.Redis, list_key: str
) -> None:
    script = redis_client.register_script(APPEND + " -- " + uuid.uuid4().hex)
    calls = [ScriptCall([list_key], [str(i)]) for i in range(5)]
    # The script was never loaded: every call answers NOSCRIPT first, then runs once.
    replies = await run_script_calls(redis_client, script, calls)
    assert replies == [1, 2, 3, 4, 5]
    assert await redis_client.llen(list_key) == 5


async def test_an_error_reaches_only_its_own_caller(redis_client: aioredis.Redis) -> None:
    script = redis_client.register_script(FAIL_ON_BAD)
    batcher = ScriptBatcher(redis_client, script, "fail_on_bad")
    results = await asyncio.gather(
        batcher(ScriptCall(["kl:{t}:x"], ["ok"])),
        batcher(ScriptCall(["kl:{t}:x"], ["bad"])),
        batcher(ScriptCall(["kl:{t}:x"], ["ok"])),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert "bad input" in str(results[1])


async def test_a_lost_connection_fails_every_waiting_caller_closed() -> None:
    # Nothing listens on port 1; the client is configured as the services configure theirs.
    client = create_redis("redis://127.0.0.1:1", timeout_seconds=0.5)
    script = client.register_script(APPEND)
    batcher = ScriptBatcher(client, script, "append")
    results = await asyncio.gather(
        *(batcher(ScriptCall(["kl:{t}:l"], [str(i)])) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    await client.aclose()
