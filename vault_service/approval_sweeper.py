"""Records approval requests nobody decided in time as expired, every few seconds, so the
`approval.decided` (expired) alert and the state people see do not wait for the next read.
Idempotent across replicas: a request leaves `pending` once."""

from __future__ import annotations

import asyncio
import logging

from keyleash_core.errors import KeyleashError
from vault_service.usecases.approvals import ApprovalDesk

log = logging.getLogger("keyleash.vault.approvals")


class ApprovalSweeper:
    def __init__(self, desk: ApprovalDesk, interval_seconds: float) -> None:
        self._desk = desk
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                expired = await self._desk.expire_due()
                if expired:
                    log.info("approval requests expired: %d", expired)
            except (KeyleashError, OSError) as error:  # the stores are down: try again later
                log.warning("approval expiry sweep failed: %s", error)
            await asyncio.sleep(self._interval)
