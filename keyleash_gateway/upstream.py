"""Forwarding one request to the vendor over a shared aiohttp ClientSession, and telling the
three outcomes apart: answered, not sent (nothing reached the vendor), unknown (sent, no answer).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
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
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, URL(url, encoded=True), headers=headers,
                data=body if body else None, allow_redirects=False,
            ) as response:  # fmt: skip
                payload = await response.content.read(self._max + 1)
                if len(payload) > self._max:
                    raise OutcomeUnknown(f"the answer is larger than {self._max} bytes")
                kept = response_headers(response.headers.items(), response.headers)
                return Answer(response.status, kept, payload, _ms(started))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise NotSent(type(error).__name__) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OutcomeUnknown(type(error).__name__) from None


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
