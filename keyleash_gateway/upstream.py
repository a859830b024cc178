"""Forwarding one request to the vendor over a shared aiohttp ClientSession, and telling the
three outcomes apart: answered, not sent (nothing reached the vendor), unknown (sent, no answer).

A streamed answer (`Content-Type: text/event-stream`) is not read whole: `open` hands it over
with its status and headers as soon as they arrive, and its body as the chunks come.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from yarl import URL

# RFC 9110 7.6.1 hop-by-hop fields, plus what the gateway sets itself or must never forward.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NEVER_UP = frozenset(
    {
        "host",
        "content-length",
        "authorization",  # carries the vault key; the vendor's own credential replaces it
        "x-api-key",
        "accept-encoding",  # aiohttp negotiates and decodes; the agent gets the decoded body
        "x-keyleash-run-id",
        "baggage",
        "cookie",
    }
)
_NEVER_DOWN = frozenset({"content-length", "content-encoding", "set-cookie"})


class NotSent(Exception):
    """The request never reached the vendor (connection refused, DNS, connect timeout)."""


class OutcomeUnknown(Exception):
    """The request may have reached the vendor, but no complete answer came back."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    latency_ms: int


class StreamCut(Exception):
    """A streamed answer stopped before its end (the vendor or the network cut it)."""


@dataclass(frozen=True)
class Opened:
    """An answer whose status and headers arrived; `streamed` ones are read with `chunks`."""

    status: int
    headers: list[tuple[str, str]]
    streamed: bool
    latency_ms: int  # until the headers arrived
    _response: aiohttp.ClientResponse
    _max: int
    _started: float

    async def read_all(self) -> Answer:
        try:
            payload = await self._response.content.read(self._max + 1)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OutcomeUnknown(type(error).__name__) from None
        if len(payload) > self._max:
            raise OutcomeUnknown(f"the answer is larger than {self._max} bytes")
        return Answer(self.status, self.headers, payload, _ms(self._started))

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk; StreamCut when it stops short."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            raise StreamCut(type(error).__name__) from None


def _connection_listed(headers: Mapping[str, str]) -> set[str]:
    """Fields the Connection header names are hop-by-hop too (RFC 9110 7.6.1)."""
    listed = headers.get("Connection", "")
    return {part.strip().lower() for part in listed.split(",") if part.strip()}


def request_headers(
    headers: Iterable[tuple[str, str]], connection: Mapping[str, str], auth: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The agent's headers as the vendor may see them, with the vendor credential in."""
    dropped = HOP_BY_HOP | _NEVER_UP | _connection_listed(connection)
    kept = [(k, v) for k, v in headers if k.lower() not in dropped]
    return kept + list(auth.items())


def response_headers(
    headers: Iterable[tuple[str, str]], connection: Mapping[str, str]
) -> list[tuple[str, str]]:
    dropped = HOP_BY_HOP | _NEVER_DOWN | _connection_listed(connection)
    return [(k, v) for k, v in headers if k.lower() not in dropped]


class UpstreamClient:
    """One ClientSession for every vendor (connection pooling per upstream host)."""

    def __init__(self, *, read_timeout: float, max_response_bytes: int) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout),
            auto_decompress=True,
            # Vendor URLs are forwarded as the agent wrote them (already percent-encoded).
            requote_redirect_url=False,
        )
        self._max = max_response_bytes

    async def close(self) -> None:
        await self._session.close()

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> Answer:
        async with self.open(method, url, headers, body) as opened:
            return await opened.read_all()

    @asynccontextmanager
    async def open(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> AsyncIterator[Opened]:
        """The vendor's answer once its headers arrived; NotSent / OutcomeUnknown before."""
        started = time.perf_counter()
        try:
            response = await self._session.request(
                method, URL(url, encoded=True), headers=headers,
                data=body if body else None, allow_redirects=False,
            )  # fmt: skip
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise NotSent(type(error).__name__) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OutcomeUnknown(type(error).__name__) from None
        try:
            kept = response_headers(response.headers.items(), response.headers)
            streamed = response.content_type == "text/event-stream"
            yield Opened(
                response.status, kept, streamed, _ms(started), response, self._max, started
            )
        finally:
            response.release()  # a body not read to its end closes the connection


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
