"""The gateway's coalescing of concurrent Keyleash calls: alone at once, together when busy,
and each caller its own answer even when a batch fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from keyleash_gateway.coalescing import Coalescer


class Service:
    """A stand-in for the far side: records how it was called; slow enough to overlap."""

    def __init__(self, fail_batches: bool = False, short_answer: bool = False) -> None:
        self.ones: list[int] = []
        self.batches: list[list[int]] = []
        self._fail_batches = fail_batches
        self._short_answer = short_answer

    async def one(self, n: int) -> str:
        self.ones.append(n)
        await asyncio.sleep(0.01)
        if n < 0:
            raise ValueError(f"bad {n}")
        return f"one:{n}"

    async def many(self, ns: Sequence[int]) -> list[str]:
        self.batches.append(list(ns))
        await asyncio.sleep(0.01)
        if self._fail_batches or any(n < 0 for n in ns):
            raise ValueError("the whole batch")
        answers = [f"many:{n}" for n in ns]
        return answers[:-1] if self._short_answer else answers


async def test_a_lone_call_goes_out_alone_at_once() -> None:
    service = Service()
    coalesce = Coalescer(service.one, service.many, max_in_flight=2)
    assert await coalesce(1) == "one:1"
    assert await coalesce(2) == "one:2"
    assert service.ones == [1, 2] and service.batches == [] and coalesce.batches == 0


async def test_calls_arriving_while_every_slot_is_busy_leave_together_in_order() -> None:
    service = Service()
    coalesce = Coalescer(service.one, service.many, max_batch=5, max_in_flight=2)
    answers = await asyncio.gather(*(coalesce(n) for n in range(12)))
    assert service.ones == [0, 1]  # the two slots, at once
    assert service.batches == [[2, 3, 4, 5, 6], [7, 8, 9, 10, 11]]
    assert answers == ["one:0", "one:1"] + [f"many:{n}" for n in range(2, 12)]
    assert coalesce.batches == 2


@pytest.mark.parametrize("service", [Service(fail_batches=True), Service(short_answer=True)])
async def test_a_failed_batch_is_sent_again_one_call_at_a_time(service: Service) -> None:
    coalesce = Coalescer(service.one, service.many, max_in_flight=1)
    answers = await asyncio.gather(*(coalesce(n) for n in range(4)))
    assert service.batches == [[1, 2, 3]]
    assert answers == ["one:0", "one:1", "one:2", "one:3"]
    assert coalesce.batches == 0


async def test_each_caller_gets_its_own_error_not_its_neighbours() -> None:
    service = Service()
    coalesce = Coalescer(service.one, service.many, max_in_flight=1)
    answers = await asyncio.gather(*(coalesce(n) for n in (0, 1, -2, 3)), return_exceptions=True)
    assert answers[:2] == ["one:0", "one:1"] and answers[3] == "one:3"
    assert isinstance(answers[2], ValueError) and str(answers[2]) == "bad -2"


async def test_a_caller_that_leaves_does_not_stop_the_others() -> None:
    service = Service()
    coalesce = Coalescer(service.one, service.many, max_in_flight=1)
    first = asyncio.ensure_future(coalesce(0))
    waiting = [asyncio.ensure_future(coalesce(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    waiting[0].cancel()
    assert await first == "one:0"
    assert await waiting[1] == "many:2"  # its batch still went out (with the call that left)
    assert waiting[0].cancelled() and service.batches == [[1, 2]]


async def test_with_linger_calls_made_one_after_another_leave_together() -> None:
    service = Service()
    coalesce = Coalescer(service.one, service.many, linger=0.2, max_batch=4)

    async def call_soon_after(n: int) -> str:
        await asyncio.sleep(0.01 * n)  # each made after the one before, within the linger
        return await coalesce(n)

    assert await asyncio.gather(*(call_soon_after(n) for n in range(3))) == [
        "many:0", "many:1", "many:2",
    ]  # fmt: skip
    assert service.batches == [[0, 1, 2]] and service.ones == []
    # A full batch does not wait out the linger; a lone call still gets its own answer.
    assert await asyncio.gather(*(coalesce(n) for n in range(4, 8))) == [
        "many:4", "many:5", "many:6", "many:7",
    ]  # fmt: skip
    assert await coalesce(9) == "one:9"
