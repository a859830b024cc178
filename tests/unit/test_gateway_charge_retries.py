"""ChargeRetries (keyleash_gateway/charge_retries.py): what is sent again, for how long, and what
shutdown does with what is still waiting."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from keyleash.client.errors import FailedPrecondition, KeyleashError, Unavailable
from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash_gateway.charge_retries import ChargeRetries


def request(request_id: str = "r1-charge") -> metering_pb2.ChargeRequest:
    return metering_pb2.ChargeRequest(
        request_id=request_id,
        key_id="k_1",
        reservation_id="res_1",
        amount=money_pb2.Money(currency_code="USD", micros=1_250_000),
    )


class Metering:
    """Answers each send with the next of `answers` (an exception to raise, or None)."""

    def __init__(self, *answers: KeyleashError | None) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    async def __call__(self, charge: metering_pb2.ChargeRequest) -> None:
        self.sent.append(charge.request_id)
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer


def unavailable() -> Unavailable:
    return Unavailable(grpc.StatusCode.UNAVAILABLE, "metering restarting")


async def wait_idle(retries: ChargeRetries) -> None:
    for _ in range(500):
        if not retries.waiting:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("still waiting")


async def test_a_passing_failure_is_sent_again_until_recorded() -> None:
    metering = Metering(unavailable(), unavailable(), None)
    retries = ChargeRetries(metering, first_delay=0.001, max_delay=0.004)
    await retries.add(request())
    assert retries.waiting == 1
    await wait_idle(retries)
    assert metering.sent == ["r1-charge"] * 3  # the same request_id each time


async def test_a_refusal_is_not_sent_again(caplog: pytest.LogCaptureFixture) -> None:
    refused = FailedPrecondition(
        grpc.StatusCode.FAILED_PRECONDITION, "not this key's", "RESERVATION_NOT_FOUND"
    )
    metering = Metering(refused)
    retries = ChargeRetries(metering, first_delay=0.001)
    with caplog.at_level(logging.ERROR, "keyleash.gateway"):
        await retries.add(request())
        await wait_idle(retries)
    assert metering.sent == ["r1-charge"]
    assert "RESERVATION_NOT_FOUND" in caplog.text and "r1-charge" in caplog.text


async def test_it_gives_up_after_its_time_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    metering = Metering(*(unavailable() for _ in range(100)))

    async def failing(charge: metering_pb2.ChargeRequest) -> None:
        now[0] += 10.0  # each attempt "takes" 10 s of the injected clock
        await metering(charge)

    retries = ChargeRetries(failing, first_delay=0.001, give_up_after=25.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, "keyleash.gateway"):
        await retries.add(request())
        await wait_idle(retries)
    assert len(metering.sent) == 3  # 10, 20, 30 s: past 25 s after the third
    assert "abandoned after 25 s: charge r1-charge key k_1 hold res_1 1250000 USD" in caplog.text


async def test_shutdown_makes_one_last_attempt_and_logs_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # r1 is recorded by the last attempt; r2 still fails and is logged for an operator.
    metering = Metering(None, unavailable())
    retries = ChargeRetries(metering, first_delay=60.0)
    await retries.add(request("r1-charge"))
    await retries.add(request("r2-charge"))
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, "keyleash.gateway"):
        await retries.close(last_attempt_seconds=1.0)
    assert metering.sent == ["r1-charge", "r2-charge"]  # the last attempts only (no wait)
    abandoned = [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()]
    assert len(abandoned) == 1 and "r2-charge" in abandoned[0]
    assert retries.waiting == 0


async def test_beyond_its_bound_a_charge_is_logged_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metering = Metering(*(unavailable() for _ in range(10)))
    retries = ChargeRetries(metering, first_delay=60.0, max_waiting=1)
    with caplog.at_level(logging.ERROR, "keyleash.gateway"):
        await retries.add(request("r1-charge"))
        await retries.add(request("r2-charge"))
    assert retries.waiting == 1
    assert "too many charges waiting" in caplog.text and "r2-charge" in caplog.text
    await retries.close(last_attempt_seconds=0.5)
