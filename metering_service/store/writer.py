"""Group commit: writer tasks record whatever is waiting, each batch in ONE transaction.

Callers enqueue and wait; a writer takes everything queued (up to max_batch_size), commits it,
and only then resolves each caller's future. Under concurrency, batches grow while a commit is in
flight, so transactions per event fall well below one. A failed batch fails every caller in it:
nothing in it was acknowledged. With two writers (the default) one batch is built and sent while
Postgres commits the other (with one, Metering idled for every commit of a webhook batch); a
second commit starts only when half a batch is waiting, so that concurrent unary Charges still
share transactions. A caller's items wait as one entry with one future (a batch of 1,000 made
1,000 futures).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

import asyncpg

from keyleash_core.errors import StoreUnavailable
from keyleash_core.telemetry import COMMIT_BATCH
from metering_service.store.billing import Outcome, PendingWrite, commit_batch

log = logging.getLogger("keyleash.metering.writer")
LINGER_YIELDS = 2


class _Queued(NamedTuple):
    items: Sequence[PendingWrite]  # at most max_batch_size
    future: asyncio.Future[list[Outcome]]


class GroupCommitWriter:
    """The writers of the billing stream in this process."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch_size: int, writers: int = 2) -> None:
        self._pool = pool
        self._max_batch = max(1, max_batch_size)
        self._writers = max(1, writers)
        self._queue: deque[_Queued] = deque()
        self._queued_items = 0
        self._committing = 0
        self._waiting = asyncio.Event()  # set when items are queued or a commit ends
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.batches = 0  # committed batches, for metrics and tests

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name=f"billing-writer-{n}") for n in range(self._writers)
        ]

    async def write_many(self, items: Sequence[PendingWrite]) -> list[Outcome]:
        """Records `items` (durably committed on return); one outcome per item, in order.

        Raises what failed the batch (e.g. StoreUnavailable) when any item's batch failed.
        """
        if self._closed or not self._tasks:
            raise StoreUnavailable("metering", "the billing writer is not running")
        loop = asyncio.get_running_loop()
        parts = []
        for start in range(0, len(items), self._max_batch):
            part = _Queued(items[start : start + self._max_batch], loop.create_future())
            self._queue.append(part)
            parts.append(part.future)
        self._queued_items += len(items)
        if self._ready():  # else a writer is committing and wakes the next when it is done
            self._waiting.set()
        if len(parts) == 1:
            return await parts[0]
        return [outcome for part in await asyncio.gather(*parts) for outcome in part]

    async def write(self, item: PendingWrite) -> Outcome:
        (outcome,) = await self.write_many([item])
        return outcome

    def _ready(self) -> bool:
        if not self._committing:
            return bool(self._queue)
        return self._queued_items >= max(1, self._max_batch // 2)

    async def _next_batch(self) -> list[_Queued]:
        while not self._ready():
            self._waiting.clear()
            await self._waiting.wait()
        # Let callers that are already runnable enqueue too: bigger batches, no timer.
        for _ in range(LINGER_YIELDS):
            await asyncio.sleep(0)
        batch: list[_Queued] = []
        size = 0
        if not self._ready():
            return batch  # another writer took them meanwhile
        while self._queue and (not batch or size + len(self._queue[0].items) <= self._max_batch):
            batch.append(self._queue.popleft())
            size += len(batch[-1].items)
        self._queued_items -= size
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            items = [item for queued in batch for item in queued.items]
            self._committing += 1
            try:
                COMMIT_BATCH.record(len(items))
                outcomes = await commit_batch(self._pool, items)
            except asyncio.CancelledError:
                # Shutting down mid-commit: whether it committed is unknown, so nobody is told
                # it did; a retry with the same request_id resolves it either way.
                _fail(batch, StoreUnavailable("metering", "shutting down"))
                raise
            except Exception as error:
                if not isinstance(error, StoreUnavailable):
                    log.exception("billing batch of %d failed", len(items))
                _fail(batch, error)
                continue
            finally:
                self._committing -= 1
                self._waiting.set()
            self.batches += 1
            start = 0
            for queued in batch:
                end = start + len(queued.items)
                if not queued.future.done():
                    queued.future.set_result(outcomes[start:end])
                start = end

    async def close(self) -> None:
        """Stops the writers; whatever is still queued fails with UNAVAILABLE (not recorded)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        _fail(list(self._queue), StoreUnavailable("metering", "shutting down"))
        self._queue.clear()


def _fail(batch: Sequence[_Queued], error: BaseException) -> None:
    for queued in batch:
        if not queued.future.done():
            queued.future.set_exception(error)
