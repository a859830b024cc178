"""A local webhook receiver for the alert tests: records every POST, verifies nothing itself,
and can answer 503 (or hang) for its first requests to play an endpoint that is down."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from google.rpc import error_details_pb2, status_pb2

from keyleash.metering.v1 import alerts_pb2


@dataclass
class Received:
    headers: dict[str, str]
    body: str

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    failures_left: int = 0  # answer 503 to this many requests first
    hang_next: bool = False  # never answer the next request (a dispatcher dies meanwhile)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.received.append(Received(dict(request.headers.items()), body))
        if self.hang_next:
            self.hang_next = False
            await asyncio.sleep(3600)
        if self.failures_left > 0:
            self.failures_left -= 1
            return web.Response(status=503)
        return web.Response(status=204)

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.payload.get("type") == event_type]


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def until(check: Any, seconds: float = 60.0, what: str = "condition") -> Any:
    """Polls `check()` (sync or async) until truthy; fails after a bounded deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def subscribe(
    metering: Any, md: Any, tenant: str, url: str, types: list[str], **extra: Any
) -> alerts_pb2.CreateAlertSubscriptionResponse:
    request = alerts_pb2.CreateAlertSubscriptionRequest(
        tenant_id=tenant,
        subscription=alerts_pb2.AlertSubscription(url=url, event_types=types, **extra),
    )
    reply: alerts_pb2.CreateAlertSubscriptionResponse = await metering.CreateAlertSubscription(
        request, metadata=md, timeout=10
    )
    return reply


async def deliveries(metering: Any, md: Any, tenant: str) -> list[alerts_pb2.AlertDelivery]:
    reply = await metering.ListAlertDeliveries(
        alerts_pb2.ListAlertDeliveriesRequest(tenant_id=tenant, page_size=1000),
        metadata=md,
        timeout=10,
    )
    return list(reply.deliveries)


def bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields google.rpc.BadRequest names in a failed call's rich status."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [v.field for v in bad.field_violations]
    return []
