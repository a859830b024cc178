"""Redis side of metering: running settle.lua and reading its answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from keyleash_core.redis.script_call import ScriptCall
from keyleash_core.redis.script_pipeline import ScriptBatcher
from keyleash_core.redis.scripts import Scripts


@dataclass(frozen=True)
class Settled:
    """settle.lua's answer. status: "ok", "stale" (chain[stale_index] has a newer policy) or
    "again" (a group, `settle_calls`, with an event settled already: settle each alone).

    tenant: "ok", "missing" (not loaded: rebuild it) or "stale" (yesterday's: rebuild it).
    """

    status: str
    stale_index: int
    tenant: str
    threshold: int
    currency: str
    spent: int
    throttled_until_ms: int


class Settlements:
    """Runs the settlement script; every failure becomes StoreUnavailable."""

    def __init__(self, scripts: Scripts) -> None:
        # Concurrent settles (a group commit's worth of Charges, a StreamUsage batch) share
        # pipelines instead of one round trip each.
        self._scripts = scripts
        self._settle = ScriptBatcher(scripts, "settle")

    async def settle(self, call: ScriptCall) -> Settled:
        return _settled(await self._settle(call))

    async def settle_many(self, calls: Sequence[ScriptCall]) -> list[Settled | Exception]:
        """A batch's settles in one pipeline, without a future per call; a script's own error
        comes back in its call's place."""
        replies = await self._scripts.run_many(
            "settle", [(call.keys, call.args) for call in calls], return_errors=True
        )
        return [r if isinstance(r, Exception) else _settled(r) for r in replies]


def _settled(raw: bytes) -> Settled:
    """settle.lua's JSON answer."""
    data = orjson.loads(raw)
    if data["r"] == "S":
        return Settled("stale", int(data["idx"]) - 1, "", 0, "", 0, 0)
    if data["r"] == "D":
        return Settled("again", -1, "", 0, "", 0, 0)
    return Settled(
        status="ok",
        stale_index=-1,
        tenant=data["tenant"],
        threshold=int(data["threshold"]),
        currency=data["currency"],
        spent=int(data["spent"]),
        throttled_until_ms=int(data["until"]),
    )
