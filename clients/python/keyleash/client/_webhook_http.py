"""How one usage webhook delivery is posted, and how a sender waits between attempts (async
with aiohttp, blocking with the standard library); scripts/unasync.py switches between the two."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class Posted:
    """What the receiver answered; status 0 when nothing was answered (connection failed)."""

    status: int
    body: bytes
    retry_after: str = ""
    failure: str = ""


class AsyncWebhookPoster:
    """Posts with one aiohttp session, opened on first use."""

    def __init__(self, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Posted:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                return Posted(response.status, answer, response.headers.get("Retry-After", ""))
        except (aiohttp.ClientError, TimeoutError) as error:
            return Posted(0, b"", failure=f"{type(error).__name__}: {error}")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SyncWebhookPoster:
    """Posts with urllib (a connection per delivery)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Posted:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return Posted(response.status, response.read())
        except urllib.error.HTTPError as error:
            return Posted(error.code, error.read(), error.headers.get("Retry-After", "") or "")
        except (OSError, TimeoutError) as error:  # URLError is an OSError
            return Posted(0, b"", failure=f"{type(error).__name__}: {error}")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def close(self) -> None:
        return None
