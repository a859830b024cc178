"""The thin pipelined link the hot-path scripts use on a standalone Redis (resp_link.py), against
real Redis servers: order, errors in place, credentials, and failing closed when Redis hangs,
dies or comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
import redis.exceptions

from keyleash_core.errors import StoreUnavailable
from keyleash_core.redis.resp_link import RespLink
from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.redis.script_pipeline import ScriptBatcher
from keyleash_core.redis.scripts import Scripts, create_redis
from keyleash_ops.devstores.processes import ManagedServer

APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"


@pytest.fixture
def list_key() -> str:
    return "kl:{link-" + uuid.uuid4().hex[:8] + "}:list"


def link_to(server: ManagedServer, timeout_seconds: float = 0.5) -> RespLink:
    return RespLink("127.0.0.1", server.port, timeout_seconds=timeout_seconds)


async def test_replies_come_back_in_order_with_each_error_in_its_place(
    own_redis: ManagedServer, list_key: str
) -> None:
    link = link_to(own_redis)
    try:
        commands: list[tuple[str, ...]] = [("RPUSH", list_key, str(i)) for i in range(300)]
        commands.insert(150, ("INCR", list_key))  # WRONGTYPE: a list is not a number
        replies = await link.execute_many(commands)
        assert replies[:150] == list(range(1, 151))
        assert isinstance(replies[150], redis.exceptions.ResponseError)
        assert "WRONGTYPE" in str(replies[150])
        assert replies[151:] == list(range(151, 301))
        # Concurrent batches on the one connection are answered to their own callers.
        batches = await asyncio.gather(
            *(link.execute_many([("LLEN", list_key), ("ECHO", f"b{i}")]) for i in range(50))
        )
        assert batches == [[300, f"b{i}".encode()] for i in range(50)]
    finally:
        await link.aclose()


async def test_the_services_scripts_use_the_link_with_the_urls_database_and_name(
    own_redis: ManagedServer, list_key: str
) -> None:
    client = create_redis(own_redis.url + "/3", timeout_seconds=1, client_name="keyleash-test")
    scripts = Scripts(client)
    scripts.register("append", APPEND)
    try:
        link = RespLink.for_client(client)  # type: ignore[arg-type]
        assert link is not None
        assert await scripts.run_many("append", [([list_key], ["a"]), ([list_key], ["b"])]) == [
            1,
            2,
        ]
        assert await client.lrange(list_key, 0, -1) == [b"a", b"b"]  # db 3, as the URL says
        names = (await client.execute_command("CLIENT", "LIST")).decode()
        assert names.count("name=keyleash-test") >= 2  # redis-py's and the link's connection
    finally:
        await scripts.aclose()
        await client.aclose()


async def test_a_hung_redis_fails_the_call_closed_within_the_timeout_then_recovers(
    own_redis: ManagedServer, list_key: str
) -> None:
    client = create_redis(own_redis.url, timeout_seconds=0.5)
    scripts = Scripts(client)
    scripts.register("append", APPEND)
    pid = int((await client.info("server"))["process_id"])
    try:
        assert await scripts.run_many("append", [([list_key], ["before"])]) == [1]
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await scripts.run_many("append", [([list_key], ["while hung"])])
            assert time.monotonic() - started < 3  # the store timeout, not forever
        finally:
            os.kill(pid, signal.SIGCONT)
        # The cut connection is not reused: the next call connects afresh and runs once. The
        # call made while Redis hung may still have run (its outcome was unknown, so it failed
        # closed); the script is exactly-once per caller's retry in the services, not here.
        replies = await scripts.run_many("append", [([list_key], ["after"])])
        assert (await client.lrange(list_key, -1, -1)) == [b"after"]
        assert replies[0] == await client.llen(list_key)
    finally:
        await scripts.aclose()
        await client.aclose()


async def test_a_restarted_redis_is_reconnected_and_the_script_loaded_again(
    own_redis: ManagedServer, list_key: str
) -> None:
    client = create_redis(own_redis.url, timeout_seconds=0.5)
    scripts = Scripts(client)
    scripts.register("append", APPEND + " -- " + uuid.uuid4().hex)
    try:
        assert await scripts.run_many("append", [([list_key], ["1"])]) == [1]
        own_redis.kill()
        with pytest.raises(StoreUnavailable):
            await scripts.run_many("append", [([list_key], ["down"])])
        own_redis.restart()  # it keeps nothing: the list and the scripts are gone
        calls = [([list_key], [str(i)]) for i in range(5)]
        assert await scripts.run_many("append", calls) == [1, 2, 3, 4, 5]  # NOSCRIPT, loaded
        assert await client.lrange(list_key, 0, -1) == [str(i).encode() for i in range(5)]
    finally:
        await scripts.aclose()
        await client.aclose()


async def test_nothing_listening_fails_closed_and_refused_credentials_too(
    own_redis: ManagedServer,
) -> None:
    link = RespLink("127.0.0.1", 1, timeout_seconds=0.5)
    with pytest.raises(redis.exceptions.ConnectionError):
        await link.execute_many([("PING",)])
    # A wrong password: the set-up is refused and no command runs on that connection.
    wrong = RespLink("127.0.0.1", own_redis.port, timeout_seconds=0.5, password="not-it")
    with pytest.raises(redis.exceptions.ConnectionError, match="refused set-up"):
        await wrong.execute_many([("PING",)])
    await wrong.aclose()


async def test_on_a_connected_link_the_batcher_writes_at_once_and_fails_closed_the_same(
    own_redis: ManagedServer, list_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = create_redis(own_redis.url, timeout_seconds=0.5)
    scripts = Scripts(client)
    scripts.register("append", APPEND + " -- " + uuid.uuid4().hex)
    batcher = ScriptBatcher(scripts, "append")
    pid = int((await client.info("server"))["process_id"])
    try:
        assert await batcher(ScriptCall([list_key], ["connects"])) == 1  # by run_many
        assert scripts.link_ready

        async def not_this_way(*_args: object, **_options: object) -> list[object]:
            raise AssertionError("a connected link takes start_many, not a task")

        monkeypatch.setattr(Scripts, "run_many", not_this_way)
        assert await batcher(ScriptCall([list_key], ["lone"])) == 2
        # Redis forgets its scripts: each call answers NOSCRIPT, is loaded and runs once.
        await client.script_flush()
        replies = await asyncio.gather(
            *(batcher(ScriptCall([list_key], [str(i)])) for i in range(5))
        )
        assert replies == [3, 4, 5, 6, 7]
        # A hung Redis fails the waiting calls within the store timeout, not forever.
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            results = await asyncio.gather(
                *(batcher(ScriptCall([list_key], ["hung"])) for _ in range(3)),
                return_exceptions=True,
            )
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert time.monotonic() - started < 3
        finally:
            os.kill(pid, signal.SIGCONT)
        monkeypatch.undo()
        assert not scripts.link_ready  # the cut connection is not reused
        assert await batcher(ScriptCall([list_key], ["after"])) == await client.llen(list_key)
        # A killed Redis: calls on the connected link fail closed too.
        own_redis.kill()
        with pytest.raises(StoreUnavailable):
            await batcher(ScriptCall([list_key], ["down"]))
    finally:
        await scripts.aclose()
        await client.aclose()
