"""How one RPC is sent: metadata, deadline, error decoding and the retry loop (async and sync)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeAlias, TypeVar, cast

import grpc
from google.protobuf.message import Message

from keyleash.client.errors import from_rpc_error
from keyleash.client.retry import RetryPolicy
from keyleash.client.run import call_metadata

M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)

# The requests of a client-streaming call: the async clients take either kind of iterable.
# scripts/unasync.py turns AsyncRequests into Requests in the generated blocking clients.
AsyncRequests: TypeAlias = AsyncIterable[M] | Iterable[M]
Requests: TypeAlias = Iterable[M]


def build_request(
    message_type: type[M],
    request: M | None,
    fields: Mapping[str, Any],
) -> M:
    """A fresh request: a copy of `request`, or one built from keyword `fields` (not both)."""
    if request is not None and fields:
        raise TypeError("pass a request message or keyword fields, not both")
    if request is None:
        return message_type(**fields)
    built = message_type()
    built.CopyFrom(request)
    return built


class _Base:
    def __init__(
        self,
        stub: Any,
        token: str | None,
        timeout: float | None,
        retry: RetryPolicy,
        unreachable: str = "",
    ) -> None:
        self.stub = stub
        self.token = token
        self.timeout = timeout
        self.retry = retry
        self.unreachable = unreachable  # what an UNAVAILABLE from no server at all should add

    def _metadata(self, token: str | None) -> tuple[tuple[str, str], ...]:
        return call_metadata(token if token is not None else self.token)

    def _timeout(self, timeout: float | None) -> float | None:
        """The deadline of one attempt: the call's, else the client's (None: no deadline)."""
        return self.timeout if timeout is None else timeout


class AsyncInvoker(_Base):
    """Sends RPCs on a grpc.aio stub."""

    async def unary(
        self,
        rpc: str,
        request: Message,
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> R:
        method = getattr(self.stub, rpc)
        metadata = self._metadata(token)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await method(request, timeout=self._timeout(timeout), metadata=metadata)
                return cast(R, response)
            except grpc.aio.AioRpcError as failure:
                error = from_rpc_error(failure, self.unreachable)
                delay = self.retry.next_delay(
                    rpc, request, error, attempt, time.monotonic() - started
                )
                if delay is None:
                    raise error from failure
            await asyncio.sleep(delay)

    def unary_stream(
        self,
        rpc: str,
        request: Message,
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> AsyncIterator[R]:
        """Starts the call now (metadata of the current context); never retried."""
        call = getattr(self.stub, rpc)(request, timeout=timeout, metadata=self._metadata(token))
        return _responses(call, response_type, self.unreachable)

    def stream_stream(
        self,
        rpc: str,
        requests: AsyncRequests[M],
        prepare: Callable[[M], M],
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> AsyncIterator[R]:
        """Starts the call now; each request goes through `prepare`. Never retried."""

        async def outgoing() -> AsyncIterator[M]:
            if isinstance(requests, AsyncIterable):
                async for item in requests:
                    yield prepare(item)
            else:
                for item in requests:
                    yield prepare(item)

        call = getattr(self.stub, rpc)(outgoing(), timeout=timeout, metadata=self._metadata(token))
        return _responses(call, response_type, self.unreachable)


async def _responses(call: Any, response_type: type[R], unreachable: str) -> AsyncIterator[R]:
    try:
        async for response in call:
            yield cast(R, response)
    except grpc.aio.AioRpcError as failure:
        raise from_rpc_error(failure, unreachable) from failure
    finally:
        # Under OpenTelemetry's client interceptors a streaming call is a plain generator.
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()


def _sync_responses(call: Any, response_type: type[R], unreachable: str) -> Iterator[R]:
    try:
        for response in call:
            yield cast(R, response)
    except grpc.RpcError as failure:
        raise from_rpc_error(failure, unreachable) from failure
    finally:
        # Under OpenTelemetry's client interceptors a streaming call is a plain generator.
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()


class SyncInvoker(_Base):
    """Sends RPCs on a blocking grpc stub."""

    def unary(
        self,
        rpc: str,
        request: Message,
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> R:
        method = getattr(self.stub, rpc)
        metadata = self._metadata(token)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = method(request, timeout=self._timeout(timeout), metadata=metadata)
                return cast(R, response)
            except grpc.RpcError as failure:
                error = from_rpc_error(failure, self.unreachable)
                delay = self.retry.next_delay(
                    rpc, request, error, attempt, time.monotonic() - started
                )
                if delay is None:
                    raise error from failure
            time.sleep(delay)

    def unary_stream(
        self,
        rpc: str,
        request: Message,
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> Iterator[R]:
        """Starts the call now (metadata of the current context); never retried."""
        call = getattr(self.stub, rpc)(request, timeout=timeout, metadata=self._metadata(token))
        return _sync_responses(call, response_type, self.unreachable)

    def stream_stream(
        self,
        rpc: str,
        requests: Requests[M],
        prepare: Callable[[M], M],
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> Iterator[R]:
        """Starts the call now; each request goes through `prepare`. Never retried."""
        outgoing = (prepare(item) for item in requests)
        call = getattr(self.stub, rpc)(outgoing, timeout=timeout, metadata=self._metadata(token))
        return _sync_responses(call, response_type, self.unreachable)
