"""Receive one delivery: verify it (Standard Webhooks, the tenant's secret), parse its events,
resolve those naming an agent to its key (Vault), record them all at Metering, and only then
answer 200. Any failure answers an error and
acknowledges nothing; a resend of the same events (same ids) is counted once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from keyleash_core.keyrecord import is_tenant_id
from keyleash_usage_hooks import answers
from keyleash_usage_hooks.agents import AgentKeys, AgentUnresolved, VaultUnavailable
from keyleash_usage_hooks.answers import Reply, UsageHookError
from keyleash_usage_hooks.events import EventsInvalid, parse_events
from keyleash_usage_hooks.metering import EventsRefused, Metering, MeteringUnavailable, NoSecret
from keyleash_usage_hooks.signature import (
    DeliveryRefused,
    SignatureInvalid,
    parse_delivery,
    verify,
)

log = logging.getLogger("keyleash.usage_hooks")


class UsageIngest:
    def __init__(
        self,
        metering: Metering,
        agents: AgentKeys,
        tolerance_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metering = metering
        self._agents = agents
        self._tolerance = tolerance_seconds
        self._clock = clock

    async def handle(self, tenant_id: str, headers: Mapping[str, str], body: bytes) -> Reply:
        if not is_tenant_id(tenant_id):
            return answers.error(400, UsageHookError.INVALID_REQUEST, "not a tenant id")
        try:
            text = await self._verified(tenant_id, headers, body)
            events = await self._agents.resolved(tenant_id, parse_events(text, tenant_id))
            response = await self._metering.record(tenant_id, events)
        except DeliveryRefused as refused:
            return answers.error(refused.status, UsageHookError(refused.code), str(refused))
        except NoSecret:
            return answers.error(
                401, UsageHookError.INVALID_SIGNATURE, "the tenant has no usage webhook secret"
            )
        except EventsInvalid as invalid:
            return answers.error(400, UsageHookError.INVALID_REQUEST, str(invalid))
        except AgentUnresolved as unresolved:
            return answers.error(422, UsageHookError.EVENT_REJECTED, str(unresolved))
        except EventsRefused as refused:
            return answers.error(refused.status, UsageHookError(refused.code), refused.message)
        except MeteringUnavailable as error:
            log.warning("usage delivery for %s not recorded: %s", tenant_id, error)
            return answers.error(
                503, UsageHookError.UNAVAILABLE, "metering unavailable; nothing was recorded"
            )
        except VaultUnavailable as error:
            log.warning("usage delivery for %s not recorded: %s", tenant_id, error)
            return answers.error(
                503, UsageHookError.UNAVAILABLE, "vault unavailable; nothing was recorded"
            )
        return answers.recorded([e.event_id for e in events], response)

    async def _verified(self, tenant_id: str, headers: Mapping[str, str], body: bytes) -> str:
        """The body's text once its signature matched the tenant's secret (a mismatch
        refetches the secret once: it may have been rotated since it was cached)."""
        delivery = parse_delivery(headers, body)
        now = int(self._clock())
        secret = await self._metering.secret(tenant_id)
        try:
            verify(delivery, [secret], now, self._tolerance)
        except SignatureInvalid:
            fresh = await self._metering.secret(tenant_id, fresh=True)
            if fresh == secret:
                raise
            verify(delivery, [fresh], now, self._tolerance)
        return delivery.text
