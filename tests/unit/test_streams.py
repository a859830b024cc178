"""keyleash_core.streams.batches: what has arrived is one batch, in order, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from keyleash_core.streams import batches


async def gated(items: list[int], gate: asyncio.Event) -> AsyncIterator[int]:
    """Yields the first item, waits for the gate, then yields the rest at once."""
    yield items[0]
    await gate.wait()
    for item in items[1:]:
        yield item


async def test_items_that_arrived_meanwhile_form_one_batch() -> None:
    gate = asyncio.Event()
    seen: list[list[int]] = []
    async for batch in batches(gated([1, 2, 3, 4, 5], gate), max_batch=10, read_ahead=10):
        seen.append(batch)
        gate.set()
        await asyncio.sleep(0)  # lets the reader take in everything that is ready
    assert seen == [[1], [2, 3, 4, 5]]


async def test_batches_are_capped_and_keep_order() -> None:
    async def numbers() -> AsyncIterator[int]:
        for n in range(10):
            yield n

    seen = [b async for b in batches(numbers(), max_batch=3, read_ahead=100)]
    assert [n for b in seen for n in b] == list(range(10))
    assert all(1 <= len(b) <= 3 for b in seen)


async def test_read_ahead_bounds_what_waits_unprocessed() -> None:
    pulled = 0

    async def counted() -> AsyncIterator[int]:
        nonlocal pulled
        for n in range(100):
            pulled += 1
            yield n

    stream = batches(counted(), max_batch=1, read_ahead=5)
    first = await anext(stream)
    for _ in range(5):
        await asyncio.sleep(0)
    assert first == [0]
    assert pulled <= 7  # the one processed, five waiting, one blocked on the bound
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator, typed as its iterator


async def test_an_error_of_the_source_follows_the_batches_read_before_it() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise ConnectionResetError("client went away")

    seen = []
    with pytest.raises(ConnectionResetError):
        async for batch in batches(failing(), max_batch=10, read_ahead=10):
            seen.append(batch)
    assert seen == [[1]]
