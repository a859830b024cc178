"""Delivers the outbox: signed POSTs, 2xx marks delivered, anything else retries with backoff
until the dead-letter horizon. At-least-once: a crash after the POST and before the mark sends
the same webhook-id again once the claim's lease ends."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime

import aiohttp
from standardwebhooks import Webhook

from keyleash_core.clock import Clock
from keyleash_core.times import ms_from_datetime
from metering_service.alerts import domain
from metering_service.alerts.secrets import open_secret
from metering_service.alerts.store import AlertStore, ClaimedDelivery

log = logging.getLogger("keyleash.alerts")


def signed_request(
    claimed: ClaimedDelivery,
    secret: str,
    now: datetime,
    approvals_url: str = "",
    pepper: bytes = b"",
) -> tuple[str, dict[str, str]]:
    """The body (standard or Slack) and the Standard Webhooks headers signing it; an
    approval.requested event gets its one-click links here (`approvals_url` set)."""
    delivery = claimed.delivery
    payload = json.loads(delivery.payload)
    if payload.get("type") == "approval.requested":
        links = domain.approval_links(payload["data"], delivery.event_id, approvals_url, pepper)
        payload["data"] |= links
    if claimed.format == "slack":
        payload = domain.slack_payload(payload)
    body = json.dumps(payload, separators=(",", ":"))
    signature = Webhook(secret).sign(delivery.event_id, now, body)
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "user-agent": "keyleash-alerts",
    }
    return body, headers


class Dispatcher:
    def __init__(
        self,
        store: AlertStore,
        session: aiohttp.ClientSession,
        *,
        pepper: bytes,
        clock: Clock,
        retry: domain.RetryPolicy,
        lease_seconds: float,
        batch: int = 32,
        approvals_url: str = "",
    ) -> None:
        self.approvals_url = approvals_url
        self.store = store
        self.session = session
        self.pepper = pepper
        self.clock = clock
        self.retry = retry
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.rng = random.Random()

    async def dispatch(self) -> int:
        """Attempts every due delivery once; returns how many were claimed."""
        claimed = await self.store.claim_due(self.batch, self.lease_seconds)
        for item in claimed:
            await self._attempt(item)
        return len(claimed)

    async def _attempt(self, claimed: ClaimedDelivery) -> None:
        delivery = claimed.delivery
        name = f"tenants/{delivery.tenant_id}/alertSubscriptions/{delivery.subscription_id}"
        secret = open_secret(self.pepper, claimed.sealed_secret, name)
        if secret is None:
            await self._failed(claimed, 0, "signing secret cannot be opened (pepper changed?)")
            return
        now = datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)
        body, headers = signed_request(claimed, secret, now, self.approvals_url, self.pepper)
        timeout = aiohttp.ClientTimeout(total=max(self.lease_seconds / 2, 0.5))
        try:
            async with self.session.post(
                claimed.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as answer:
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as error:
            await self._failed(claimed, 0, f"{type(error).__name__}")
            return
        if 200 <= status < 300:
            await self.store.mark_delivered(delivery.delivery_id, status)
        else:
            await self._failed(claimed, status, f"HTTP {status}")

    async def _failed(self, claimed: ClaimedDelivery, status: int, error: str) -> None:
        delivery = claimed.delivery
        dead = self.retry.dead(
            delivery.attempts, ms_from_datetime(delivery.create_time), self.clock.now_ms()
        )
        delay = self.retry.delay_ms(delivery.attempts, self.rng) / 1000
        # Only the event id and subscription: never the URL's query (Slack's token) or secret.
        log.info(
            "alert %s to %s failed (%s)%s",
            delivery.event_id,
            delivery.subscription_id,
            error,
            ", dead" if dead else "",
        )
        await self.store.mark_failed(delivery.delivery_id, status, error, delay, dead)
