"""Runs the scanner and the dispatcher as one background task (inside the metering process or
alone, see __main__.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import asyncpg

from keyleash_core.clock import Clock
from keyleash_core.errors import KeyleashError
from metering_service.alerts.dispatcher import Dispatcher
from metering_service.alerts.domain import RetryPolicy
from metering_service.alerts.scanner import Scanner
from metering_service.alerts.store import AlertStore
from metering_service.settings import AlertSettings

log = logging.getLogger("keyleash.alerts")


class AlertWorker:
    def __init__(
        self, pool: asyncpg.Pool, settings: AlertSettings, pepper: bytes, clock: Clock
    ) -> None:
        self.settings = settings
        self.store = AlertStore(pool)
        self.scanner = Scanner(self.store, clock, settings.lag_seconds)
        self.pepper = pepper
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="keyleash-alerts")

    async def _run(self) -> None:
        retry = RetryPolicy(
            base_ms=self.settings.retry_base_ms,
            max_attempts=self.settings.max_attempts,
            horizon_ms=self.settings.horizon_ms,
        )
        async with aiohttp.ClientSession() as session:
            dispatcher = Dispatcher(
                self.store,
                session,
                pepper=self.pepper,
                clock=self.clock,
                retry=retry,
                lease_seconds=self.settings.lease_seconds,
                approvals_url=self.settings.approvals_url,
            )
            while True:
                await self._pass(dispatcher)
                await asyncio.sleep(self.settings.poll_seconds)

    async def _pass(self, dispatcher: Dispatcher) -> None:
        """One scan and one dispatch; a store outage is logged and retried on the next pass."""
        try:
            await self.scanner.scan()
            while await dispatcher.dispatch() == dispatcher.batch:
                pass
        except KeyleashError as error:
            log.warning("alerts pass failed: %s", error.reason)
        except Exception:  # a bug must not stop alerts for good; the next pass tries again
            log.exception("alerts pass failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
