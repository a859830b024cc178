"""Group commit: one writer task records whatever is waiting in ONE transaction.

Callers enqueue and wait; the writer takes everything queued (up to max_batch_size), commits it,
and only then resolves each caller's future. Under concurrency, batches grow while a commit is in
flight, so transactions per event fall well below one. A failed batch fails every caller in it:
nothing in it was acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from keyleash_core.errors import StoreUnavailable
from keyleash_core.telemetry import COMMIT_BATCH
from metering_service.store.billing import Outcome, PendingWrite, commit_batch

log = logging.getLogger("keyleash.metering.writer")
LINGER_YIELDS = 2


@dataclass
class _Queued:
    item: PendingWrite
    future: asyncio.Future[Outcome]


class GroupCommitWriter:
    """The single writer of the billing stream in this process."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch_size: int) -> None:
        self._pool = pool
        self._max_batch = max(1, max_batch_size)
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # committed batches, for metrics and tests

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="billing-writer")

    async def write_many(self, items: Sequence[PendingWrite]) -> list[Outcome]:
        """Records `items` (durably committed on return); one outcome per item, in order.

        Raises what failed the batch (e.g. StoreUnavailable) when any item's batch failed.
        """
        if self._closed or self._task is None:
            raise StoreUnavailable("metering", "the billing writer is not running")
        loop = asyncio.get_running_loop()
        queued = [_Queued(item, loop.create_future()) for item in items]
        for q in queued:
            self._queue.put_nowait(q)
        return list(await asyncio.gather(*(q.future for q in queued)))

    async def write(self, item: PendingWrite) -> Outcome:
        (outcome,) = await self.write_many([item])
        return outcome

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Let callers that are already runnable enqueue too: bigger batches, no timer.
            for _ in range(LINGER_YIELDS):
                await asyncio.sleep(0)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                COMMIT_BATCH.record(len(batch))
                outcomes = await commit_batch(self._pool, [q.item for q in batch])
            except asyncio.CancelledError:
                # Shutting down mid-commit: whether it committed is unknown, so nobody is told
                # it did; a retry with the same request_id resolves it either way.
                for q in batch:
                    if not q.future.done():
                        q.future.set_exception(StoreUnavailable("metering", "shutting down"))
                raise
            except Exception as error:
                if not isinstance(error, StoreUnavailable):
                    log.exception("billing batch of %d failed", len(batch))
                for q in batch:
                    if not q.future.done():
                        q.future.set_exception(error)
                continue
            self.batches += 1
            for q, outcome in zip(batch, outcomes, strict=True):
                if not q.future.done():
                    q.future.set_result(outcome)

    async def close(self) -> None:
        """Stops the writer; whatever is still queued fails with UNAVAILABLE (not recorded)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while not self._queue.empty():
            q = self._queue.get_nowait()
            if not q.future.done():
                q.future.set_exception(StoreUnavailable("metering", "shutting down"))
