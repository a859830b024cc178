"""The usage webhook sender: sign (Standard Webhooks), post, retry with backoff.

    async with UsageWebhookSender(url, tenant, secret) as sender:
        event = {"id": "evt_1", "key_id": key_id, "model": "gpt-4o", "input_tokens": 1200}
        result = await sender.send([event, {"id": "evt_2", "agent_id": "support-bot", ...}])

Each event names its key by `key_id`, or its agent by `agent_id` (see UsageEvent).

send() returns only once the receiver acknowledged every event (committed at Metering); a
resend of the same event ids is counted once, so retrying after any failure is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import orjson

from keyleash.client._usage_delivery import (
    DEFAULT_BACKOFF,
    Backoff,
    UsageWebhookResult,
    as_list,
    batches,
    error_of,
    events_url,
    new_webhook_id,
    should_retry,
    signed_headers,
)
from keyleash.client._webhook_http import AsyncWebhookPoster


class UsageWebhookSender:
    """Sends usage events of one tenant to the Keyleash usage webhook receiver."""

    def __init__(
        self,
        url: str,
        tenant_id: str,
        secret: str,
        *,
        timeout: float = 30.0,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.url = events_url(url, tenant_id)
        self._secret = secret
        self._backoff = backoff
        self._poster = AsyncWebhookPoster(timeout)

    async def send(
        self, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> UsageWebhookResult:
        """Posts the events in batches of up to 1,000; raises UsageWebhookError when the
        receiver refused a batch or every attempt failed (batches before it stay recorded)."""
        result = UsageWebhookResult()
        for body in batches(as_list(events)):
            result.add(await self._deliver(body))
        return result

    async def _deliver(self, body: bytes) -> dict[str, Any]:
        webhook_id = new_webhook_id()
        attempt = 0
        while True:
            attempt += 1
            headers = signed_headers(self._secret, webhook_id, body, datetime.now(UTC))
            posted = await self._poster.post(self.url, body, headers)
            if posted.status == 200:
                answer: dict[str, Any] = orjson.loads(posted.body)
                return answer
            if not should_retry(posted.status) or attempt >= self._backoff.max_attempts:
                raise error_of(posted.status, posted.body, posted.failure)
            await self._poster.sleep(self._backoff.delay(attempt, posted.retry_after))

    async def close(self) -> None:
        await self._poster.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
