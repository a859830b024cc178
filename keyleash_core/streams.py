"""Batching a request stream: what the client has sent so far becomes one batch.

Both services' streaming RPCs (AuthorizeStream, StreamUsage) read requests ahead of their work,
so that a batch carries everything that arrived while the previous one was being processed
(one Redis pipeline, one group commit) instead of one request at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def batches(
    source: AsyncIterator[T], *, max_batch: int, read_ahead: int
) -> AsyncIterator[list[T]]:
    """Yields lists of 1..max_batch items in arrival order until the source ends.

    At most `read_ahead` items wait unprocessed (back-pressure on the client). An error of the
    source (e.g. the client cancelled) is raised after the batches read before it.
    """
    queue: asyncio.Queue[T | None] = asyncio.Queue()
    space = asyncio.Semaphore(read_ahead)

    async def read() -> None:
        try:
            async for item in source:
                await space.acquire()
                queue.put_nowait(item)
        finally:
            queue.put_nowait(None)  # wakes the consumer whether the source ended or failed

    reader = asyncio.ensure_future(read())
    try:
        ended = False
        while not ended:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < max_batch and not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    ended = True
                    break
                batch.append(more)
            for _ in batch:
                space.release()
            yield batch
        await reader
    finally:
        reader.cancel()
