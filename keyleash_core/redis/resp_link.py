"""A thin pipelined connection to one standalone Redis, for the Lua scripts on the hot path.

Why not redis-py here: every Authorize and every settle is one EVALSHA, and through a redis-py
pipeline each costs a pooled connection checkout, a Pipeline object, per-command Python packing
and per-reply callbacks, even with hiredis parsing the bytes (`python -m bench.redis_clients`
compares the clients by CPU per call). This link does only what the hot path needs: commands
packed by hiredis, written on one socket as they are made, answered in order (Redis answers a
connection's commands in order, so the replies are matched first in, first out), each reply
parsed by hiredis. Everything else, and a Redis Cluster, stays on redis-py.

Failure is closed: a connect, a write or a reply that takes longer than the store timeout, or a
lost connection, fails every call then waiting with a redis-py ConnectionError/TimeoutError
(which `run_redis` maps to UNAVAILABLE), and the next call connects afresh.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
import redis.exceptions
from redis._parsers.base import BaseParser

Command = Sequence[Any]  # a command and its arguments: str, bytes or int


def _pack(commands: Sequence[Command]) -> bytes:
    # hiredis's stub types the argument as a 1-tuple; it takes any tuple of str/bytes/int.
    return b"".join(hiredis.pack_command(cast(Any, tuple(command))) for command in commands)


# The exception classes redis-py raises for Redis's error prefixes (NOSCRIPT, READONLY,
# LOADING, ...), so callers handle a link's errors exactly as they handle redis-py's.
def _error_from_reply(reply: redis.exceptions.ResponseError) -> Exception:
    error: Exception = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


Deliver = Callable[[list[Any] | BaseException], None]
"""Receives one batch's replies in order, or the error that failed the whole batch. Called from
the protocol's own callbacks, so it must not raise."""


def _into(future: asyncio.Future[list[Any]]) -> Deliver:
    def deliver(outcome: list[Any] | BaseException) -> None:
        if future.done():  # its caller gave up; the replies are dropped
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    return deliver


class _Batch:
    """The replies still owed to one batch of commands, in order."""

    __slots__ = ("deliver", "expected", "replies", "timer")

    def __init__(self, deliver: Deliver, expected: int) -> None:
        self.deliver = deliver
        self.expected = expected
        self.replies: list[Any] = []
        self.timer: asyncio.TimerHandle | None = None


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, on_lost: Callable[[], None] | None) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.on_lost = on_lost
        self._reader = hiredis.Reader(replyError=redis.exceptions.ResponseError)
        self._waiting: deque[_Batch] = deque()

    @property
    def live(self) -> bool:
        return not self.lost and self.transport is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (create_connection made it); not isinstance-checked: uvloop's
        # transports do not derive from asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, payload: bytes, expected: int, deliver: Deliver) -> _Batch | None:
        """Writes the commands now; on a lost connection `deliver` gets ConnectionError."""
        if self.lost or self.transport is None:
            deliver(redis.exceptions.ConnectionError("connection to Redis lost"))
            return None
        batch = _Batch(deliver, expected)
        self._waiting.append(batch)
        self.transport.write(payload)
        return batch

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while (reply := reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step, drop it
                self.cut(redis.exceptions.ConnectionError("unexpected reply from Redis"))
                return
            batch = waiting[0]
            if isinstance(reply, redis.exceptions.ResponseError):
                reply = _error_from_reply(reply)
            batch.replies.append(reply)
            if len(batch.replies) == batch.expected:
                waiting.popleft()
                if batch.timer is not None:
                    batch.timer.cancel()
                batch.deliver(batch.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cut(redis.exceptions.ConnectionError(f"connection to Redis lost: {exc}"))

    def cut(self, error: Exception) -> None:
        """Fails every waiting batch with `error` and closes the connection (once)."""
        first = not self.lost
        self.lost = True
        while self._waiting:
            batch = self._waiting.popleft()
            if batch.timer is not None:
                batch.timer.cancel()
            batch.deliver(error)
        if self.transport is not None:
            self.transport.abort()
        if first and self.on_lost is not None:
            self.on_lost()


class RespLink:
    """One pipelined connection to a standalone Redis; `execute_many` sends commands in one
    write and returns their replies in order, an error reply as an exception in its place."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_seconds: float,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        client_name: str | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        """`on_lost` is called when a connection is lost or cut for a timeout (not on aclose)."""
        self._host = host
        self._on_lost = on_lost
        self._port = port
        self._timeout = timeout_seconds
        self._setup: list[Command] = []
        if password is not None:
            self._setup.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            self._setup.append(("SELECT", db))
        if client_name:
            self._setup.append(("CLIENT", "SETNAME", client_name))
        self._protocol: _LinkProtocol | None = None
        self._connecting: asyncio.Lock | None = None

    @classmethod
    def for_client(
        cls, client: aioredis.Redis, on_lost: Callable[[], None] | None = None
    ) -> RespLink | None:
        """A link to the server `client` talks to, with its credentials and timeout; None when
        the client is not on plain TCP (a Unix socket or TLS stay on redis-py)."""
        pool = client.connection_pool
        if pool.connection_class is not aioredis.Connection:
            return None
        options = pool.connection_kwargs
        timeout = options.get("socket_timeout")
        return cls(
            str(options.get("host", "localhost")),
            int(options.get("port", 6379)),
            timeout_seconds=float(timeout) if timeout else 5.0,
            db=int(options.get("db", 0) or 0),
            username=options.get("username"),
            password=options.get("password"),
            client_name=options.get("client_name"),
            on_lost=on_lost,
        )

    @property
    def ready(self) -> bool:
        """Connected, so `submit` sends at once."""
        return self._protocol is not None and self._protocol.live

    def submit(self, commands: Sequence[Command], deliver: Deliver) -> bool:
        """Writes the commands now, with no task or await of its own, and hands their replies
        to `deliver` from the protocol's callback; False (nothing sent) when not `ready`."""
        protocol = self._protocol
        if protocol is None or not protocol.live:
            return False
        loop = asyncio.get_running_loop()
        self._send(protocol, _pack(commands), len(commands), deliver, loop.time() + self._timeout)
        return True

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        payload = _pack(commands)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                protocol = await self._connected()
        except TimeoutError:
            self._drop()
            raise redis.exceptions.TimeoutError("Redis did not answer in time") from None
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._send(protocol, payload, len(commands), _into(future), deadline)
        return await future

    def _send(
        self,
        protocol: _LinkProtocol,
        payload: bytes,
        expected: int,
        deliver: Deliver,
        deadline: float,
    ) -> None:
        batch = protocol.send(payload, expected, deliver)
        if batch is not None:
            batch.timer = asyncio.get_running_loop().call_at(deadline, self._timed_out, protocol)

    def _timed_out(self, protocol: _LinkProtocol) -> None:
        # Redis is hung or the network is: this connection's replies can no longer be trusted
        # to arrive in time, so it is cut (failing every call on it) and the next connects again.
        if self._protocol is protocol:
            self._protocol = None
        protocol.cut(redis.exceptions.TimeoutError("Redis did not answer in time"))

    async def _connected(self) -> _LinkProtocol:
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            protocol = self._protocol
            if protocol is not None and not protocol.lost:
                return protocol
            loop = asyncio.get_running_loop()
            try:
                _transport, protocol = await loop.create_connection(
                    lambda: _LinkProtocol(self._on_lost), self._host, self._port
                )
            except OSError as error:
                raise redis.exceptions.ConnectionError(
                    f"cannot connect to Redis at {self._host}:{self._port}: {error}"
                ) from None
            if self._setup:
                set_up: asyncio.Future[list[Any]] = loop.create_future()
                protocol.send(_pack(self._setup), len(self._setup), _into(set_up))
                for reply in await set_up:
                    if isinstance(reply, Exception):
                        protocol.connection_lost(None)
                        raise redis.exceptions.ConnectionError(f"Redis refused set-up: {reply}")
            self._protocol = protocol
            return protocol

    def _drop(self, *, closing: bool = False) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            if closing:
                protocol.on_lost = None
            protocol.connection_lost(None)

    async def aclose(self) -> None:
        self._drop(closing=True)
