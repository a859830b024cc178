"""Auto-pipelining of Lua script calls: concurrent callers share round trips to Redis.

Under load, dozens of Authorize or settle calls are waiting for Redis at any moment. Sent one by
one, each pays redis-py's per-command cost (a pooled connection, a socket write, a read) and
Redis's per-command syscalls. `ScriptBatcher` keeps one pipeline in flight and queues the calls
made while it travels for the next one (auto-pipelining). Each script still runs atomically on
its own, in the order the calls were made, so batching changes no decision; it only shares the
trip.
"""

from __future__ import annotations

import asyncio
from typing import Any

from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.redis.scripts import Scripts, run_redis
from keyleash_core.telemetry import store_span

# Enough to amortise a round trip; small enough that one reply never holds up a caller long.
MAX_BATCH = 256


class ScriptBatcher:
    """`await batcher(call)` runs one call of script `name`, pipelined with the calls made
    meanwhile (through `Scripts.run_many`, which knows standalone Redis from a cluster)."""

    def __init__(self, scripts: Scripts, name: str) -> None:
        self._scripts = scripts
        self._name = name
        self._span_name = f"redis {name}"
        self._queue: list[tuple[ScriptCall, asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._lingered = False
        self._in_flight = 0  # batches sent and not answered yet (at most one)
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, call: ScriptCall) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((call, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        with store_span(self._span_name):
            return await run_redis(lambda: future)

    def _flush(self) -> None:
        # One pipeline in flight at a time: calls made while it travels wait for the next one.
        # When idle a call goes at once; under load the batches grow by themselves. One at a
        # time also keeps Redis running the calls in the order they were made.
        self._flush_scheduled = False
        if not self._queue or self._in_flight:
            return
        link_ready = self._scripts.link_ready
        if len(self._queue) == 1 and not self._lingered and not link_ready:
            # Through redis-py a lone call waits one more turn of the loop: under load, calls
            # arriving in that turn share its trip (a lone EVALSHA costs redis-py as much as a
            # pipeline of ten). On the thin link a lone call costs little more than its bytes.
            self._lingered = self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._lingered = False
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        self._in_flight += 1
        calls = [(call.keys, call.args) for call, _future in batch]
        if link_ready and self._scripts.start_many(
            self._name, calls, lambda outcome: self._answered(batch, outcome)
        ):
            return
        task = asyncio.ensure_future(self._send(batch, calls))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._done()

    def _done(self) -> None:
        self._in_flight -= 1
        if self._queue and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _send(
        self,
        batch: list[tuple[ScriptCall, asyncio.Future[Any]]],
        calls: list[tuple[list[str], list[Any]]],
    ) -> None:
        try:
            replies = await self._scripts.run_many(self._name, calls, return_errors=True)
        except asyncio.CancelledError:
            for _call, future in batch:
                future.cancel()
            raise
        except Exception as error:  # handed to every waiting caller, who maps it
            _answer(batch, error)
            return
        _answer(batch, replies)

    def _answered(
        self, batch: list[tuple[ScriptCall, asyncio.Future[Any]]], outcome: list[Any] | Exception
    ) -> None:
        _answer(batch, outcome)
        self._done()


def _answer(
    batch: list[tuple[ScriptCall, asyncio.Future[Any]]], outcome: list[Any] | Exception
) -> None:
    """Each caller's reply (a script error in its place), or the error that failed the batch."""
    if isinstance(outcome, Exception):
        for _call, future in batch:
            if not future.done():
                future.set_exception(outcome)
        return
    for (_call, future), reply in zip(batch, outcome, strict=True):
        if future.done():  # the caller gave up (deadline); the script ran or will run anyway
            continue
        if isinstance(reply, Exception):
            future.set_exception(reply)
        else:
            future.set_result(reply)
