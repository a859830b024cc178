"""Relaying a streamed answer (server-sent events) to the agent as it arrives: each chunk the
vendor sends is metered and written on at once, never gathered first. How the stream ended is
what its charge depends on (the vendor meter prices it)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from keyleash_gateway.upstream import Opened, StreamCut
from keyleash_gateway.vendors.base import StreamMeter


class ClientGone(Exception):
    """The agent closed its connection while the answer was being written."""


class ReplySink(Protocol):
    """Where a streamed answer goes: the agent's HTTP response, started once."""

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None: ...

    async def write(self, data: bytes) -> None:
        """Sends data on at once; ClientGone when the agent is not there any more."""

    async def finish(self) -> None: ...

    def abort(self) -> None:
        """Cuts the agent's connection: a stream the vendor cut must not look complete."""


class StreamEnd(StrEnum):
    """How a relayed stream ended (recorded as the charge's `outcome`)."""

    COMPLETE = "answered"
    UPSTREAM_CUT = "stream_cut_by_vendor"
    CLIENT_GONE = "stream_cut_by_client"


async def relay(opened: Opened, meter: StreamMeter, sink: ReplySink) -> StreamEnd:
    """Passes the vendor's stream through the meter to the agent, chunk by chunk."""
    await sink.start(opened.status, opened.headers)
    try:
        try:
            async for chunk in opened.chunks():
                kept = meter.feed(chunk)
                if kept:
                    await sink.write(kept)
        except StreamCut:
            sink.abort()
            return StreamEnd.UPSTREAM_CUT
        rest = meter.flush()
        if rest:
            await sink.write(rest)
        await sink.finish()
    except ClientGone:
        return StreamEnd.CLIENT_GONE
    return StreamEnd.COMPLETE
