"""The receiver's port to Metering: the tenant's signing secret (cached briefly) and
BatchRecordUsage, over the project's gRPC client with the service credential. Metering's
refusals become EventsRefused (the sender's fault: do not retry as is); anything else is
MeteringUnavailable (503: nothing acknowledged, the sender retries)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from keyleash.client import MeteringClient, NotFound, RetryPolicy
from keyleash.client.errors import KeyleashError
from keyleash.metering.v1 import metering_pb2
from keyleash_usage_hooks.events import UsageEvent
from keyleash_usage_hooks.settings import UsageHooksSettings

REQUEST_ID_PREFIX = "usage-hook"
# gRPC status of a refusal -> (HTTP status, code of the JSON error).
REFUSALS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "INVALID_REQUEST"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "EVENT_ID_REUSED"),
    grpc.StatusCode.NOT_FOUND: (422, "EVENT_REJECTED"),
    grpc.StatusCode.FAILED_PRECONDITION: (422, "EVENT_REJECTED"),
    grpc.StatusCode.PERMISSION_DENIED: (422, "EVENT_REJECTED"),
}


class MeteringUnavailable(Exception):
    """Metering did not answer usefully: nothing was acknowledged (503)."""


class NoSecret(Exception):
    """The tenant has no usage webhook secret: no delivery can be verified (401)."""


class EventsRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def request_id(tenant_id: str, event_id: str) -> str:
    """The event's idempotency key at Metering: a resend of the same event id is a duplicate.
    Scoped by tenant, since request ids are unique across tenants."""
    return f"{REQUEST_ID_PREFIX}/{tenant_id}/{event_id}"


def usage_request(tenant_id: str, event: UsageEvent) -> metering_pb2.RecordUsageRequest:
    request = metering_pb2.RecordUsageRequest(
        request_id=request_id(tenant_id, event.event_id),
        key_id=event.key_id,
        agent_run_id=event.agent_run_id,
        model=event.model,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cached_input_tokens=event.cached_input_tokens,
    )
    if event.occur_time_us is not None:
        occur_time = request.occur_time
        occur_time.seconds, micros = divmod(event.occur_time_us, 1_000_000)
        occur_time.nanos = micros * 1000
    return request


@dataclass
class _Cached:
    secret: str
    fetched: float


class Metering:
    """Metering as the receiver uses it. Owns its client."""

    def __init__(
        self, settings: UsageHooksSettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = MeteringClient(
            settings.metering_target,
            token=settings.service_token,
            timeout=settings.keyleash_timeout_seconds,
            retry=RetryPolicy(max_attempts=2, deadline=settings.keyleash_timeout_seconds),
        )
        self._cache: dict[str, _Cached] = {}
        self._fetching: dict[str, asyncio.Future[str]] = {}
        self._cache_seconds = settings.secret_cache_seconds
        self._monotonic = monotonic

    async def close(self) -> None:
        await self._client.close()

    async def secret(self, tenant_id: str, *, fresh: bool = False) -> str:
        """The tenant's secret: cached, or (fresh) fetched again. Concurrent fetches for one
        tenant share one call, so a flood of forged deliveries costs Metering little."""
        cached = self._cache.get(tenant_id)
        if not fresh and cached is not None:
            if self._monotonic() - cached.fetched < self._cache_seconds:
                return cached.secret
        pending = self._fetching.get(tenant_id)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(tenant_id))
            self._fetching[tenant_id] = pending
            pending.add_done_callback(lambda done: self._fetched(tenant_id, done))
        return await asyncio.shield(pending)

    def _fetched(self, tenant_id: str, done: asyncio.Future[str]) -> None:
        self._fetching.pop(tenant_id, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter had gone

    async def _fetch(self, tenant_id: str) -> str:
        try:
            access = await self._client.access_usage_webhook_secret(tenant_id)
        except NotFound:
            self._cache.pop(tenant_id, None)
            raise NoSecret(tenant_id) from None
        except KeyleashError as error:
            raise MeteringUnavailable(f"AccessUsageWebhookSecret: {error}") from None
        self._cache[tenant_id] = _Cached(access.signing_secret, self._monotonic())
        return access.signing_secret

    async def record(
        self, tenant_id: str, events: Sequence[UsageEvent]
    ) -> metering_pb2.BatchRecordUsageResponse:
        """Every event committed (or found committed before) on return."""
        requests = [usage_request(tenant_id, e) for e in events]
        try:
            # The answer needs each event's id and amount only (answers.recorded).
            return await self._client.batch_record_usage(
                tenant_id, requests, view=metering_pb2.BILLING_EVENT_VIEW_BASIC
            )
        except KeyleashError as error:
            refusal = REFUSALS.get(error.code) if error.code is not None else None
            if refusal is None:
                raise MeteringUnavailable(f"BatchRecordUsage: {error}") from None
            raise EventsRefused(*refusal, _refusal_message(error)) from None


def _refusal_message(error: KeyleashError) -> str:
    """Metering's message, with the field it names mapped back to the event's position."""
    if error.field_violations:
        violation = error.field_violations[0]
        field = violation.field.replace("requests[", "events[").replace(".request_id", ".id")
        return f"{field}: {violation.description}"
    return error.message
