"""The client's usage webhook senders (async and blocking) against the real receiver, and their
retries against a stand-in that verifies each attempt with the standardwebhooks package."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from keyleash.client.usage_hooks import (
    Backoff,
    SyncUsageWebhookSender,
    UsageWebhookError,
    UsageWebhookSender,
)
from tests.gateway.standins import serve
from tests.usage_hooks.conftest import HookTenant, Receiver, expected_micros, usage

FAST = Backoff(max_attempts=4, initial=0.01, maximum=0.05)
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


async def _count(db: asyncpg.Connection, tenant: str) -> tuple[int, int]:
    row = await db.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount_micros), 0) AS total FROM billing_events"
        " WHERE tenant_id = $1",
        tenant,
    )
    assert row is not None
    return int(row["n"]), int(row["total"])


async def test_the_async_sender_sends_2500_events_in_batches_once(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    events = [usage(hook_tenant.key_id, i) for i in range(2500)]
    async with UsageWebhookSender(receiver.url, hook_tenant.tenant_id, hook_tenant.secret) as s:
        first = await s.send(events)
        again = await s.send(events)
    assert (first.accepted, first.duplicates, len(first.events)) == (2500, 0, 2500)
    assert (again.accepted, again.duplicates) == (0, 2500)
    assert await _count(db, hook_tenant.tenant_id) == (2500, expected_micros(range(2500)))


async def test_the_blocking_sender_sends_one_event(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    def send() -> int:
        with SyncUsageWebhookSender(
            receiver.url, hook_tenant.tenant_id, hook_tenant.secret
        ) as sender:
            return sender.send(usage(hook_tenant.key_id, 7)).accepted

    assert await asyncio.to_thread(send) == 1
    assert await _count(db, hook_tenant.tenant_id) == (1, expected_micros([7]))


async def test_a_refusal_is_raised_at_once_with_the_receivers_code(
    receiver: Receiver, hook_tenant: HookTenant
) -> None:
    async with UsageWebhookSender(receiver.url, hook_tenant.tenant_id, SECRET) as sender:
        with pytest.raises(UsageWebhookError) as refused:
            await sender.send([usage(hook_tenant.key_id, 1)])
    assert (refused.value.status, refused.value.code) == (401, "INVALID_SIGNATURE")


class Flaky:
    """Answers 503 (then a dropped connection) before 200; verifies every attempt."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.ids: list[str] = []
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        Webhook(SECRET).verify(body, dict(request.headers))  # raises on a bad signature
        self.ids.append(request.headers["webhook-id"])
        self.bodies.append(body)
        if len(self.ids) <= self.failures:
            return web.json_response(
                {"error": {"code": "UNAVAILABLE", "message": "try again"}}, status=503
            )
        events = json.loads(body)["events"]
        return web.json_response(
            {"accepted": len(events), "duplicates": 0, "events": [], "tenant": {}}
        )


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[Flaky, str]]:
    state = Flaky(failures=2)
    app = web.Application()
    app.router.add_post("/v1/tenants/{tenant}/usage-events", state.handle)
    runner, url = await serve(app)
    try:
        yield state, url
    finally:
        await runner.cleanup()


async def test_unavailable_is_retried_with_the_same_webhook_id_signed_anew(
    flaky: tuple[Flaky, str],
) -> None:
    state, url = flaky
    async with UsageWebhookSender(url, "acme", SECRET, backoff=FAST) as sender:
        result = await sender.send([usage("k_1", 1), usage("k_1", 2)])
    assert result.accepted == 2
    assert len(state.ids) == 3 and len(set(state.ids)) == 1
    assert len(set(state.bodies)) == 1


async def test_retries_end_with_the_last_error(flaky: tuple[Flaky, str]) -> None:
    state, url = flaky
    state.failures = 100
    async with UsageWebhookSender(url, "acme", SECRET, backoff=FAST) as sender:
        with pytest.raises(UsageWebhookError) as failed:
            await sender.send(usage("k_1", 1))
    assert failed.value.status == 503 and len(state.ids) == FAST.max_attempts


async def test_no_receiver_is_retried_then_raised() -> None:
    async with UsageWebhookSender("http://127.0.0.1:9", "acme", SECRET, backoff=FAST) as sender:
        with pytest.raises(UsageWebhookError) as failed:
            await sender.send(usage("k_1", 1))
    assert failed.value.status == 0
