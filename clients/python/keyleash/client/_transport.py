"""How one RPC is sent: metadata, deadline, error decoding and the retry loop (async and sync)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from keyleash.client.errors import from_rpc_error
from keyleash.client.retry import RetryPolicy
from keyleash.client.run import call_metadata

M = TypeVar("M", bound=Message)
R = TypeVar("R", bound=Message)


def build_request(
    message_type: type[M],
    request: M | None,
    fields: Mapping[str, Any],
) -> M:
    """A fresh request: a copy of `request`, or one built from keyword `fields` (not both)."""
    if request is not None and fields:
        raise TypeError("pass a request message or keyword fields, not both")
    built = message_type()
    if request is not None:
        built.CopyFrom(request)
    else:
        built = message_type(**fields)
    return built


class _Base:
    def __init__(
        self, stub: Any, token: str | None, timeout: float | None, retry: RetryPolicy
    ) -> None:
        self.stub = stub
        self.token = token
        self.timeout = timeout
        self.retry = retry

    def _metadata(self, token: str | None) -> tuple[tuple[str, str], ...]:
        return call_metadata(token if token is not None else self.token)

    def _attempt_timeout(self, timeout: float | None, started: float) -> float | None:
        timeout = self.timeout if timeout is None else timeout
        remaining = self.retry.deadline - (time.monotonic() - started)
        if timeout is None:
            return max(remaining, 0.001)
        return max(min(timeout, remaining), 0.001)


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
                response = await method(
                    request, timeout=self._attempt_timeout(timeout, started), metadata=metadata
                )
                return cast(R, response)
            except grpc.aio.AioRpcError as failure:
                error = from_rpc_error(failure)
                delay = self.retry.next_delay(
                    rpc, request, error, attempt, time.monotonic() - started
                )
                if delay is None:
                    raise error from failure
            await asyncio.sleep(delay)

    async def unary_stream(
        self,
        rpc: str,
        request: Message,
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> AsyncIterator[R]:
        call = getattr(self.stub, rpc)(request, timeout=timeout, metadata=self._metadata(token))
        try:
            async for response in call:
                yield cast(R, response)
        except grpc.aio.AioRpcError as failure:
            raise from_rpc_error(failure) from failure
        finally:
            call.cancel()

    async def stream_stream(
        self,
        rpc: str,
        requests: AsyncIterable[M] | Iterable[M],
        prepare: Callable[[M], M],
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> AsyncIterator[R]:
        async def outgoing() -> AsyncIterator[M]:
            if isinstance(requests, AsyncIterable):
                async for item in requests:
                    yield prepare(item)
            else:
                for item in requests:
                    yield prepare(item)

        call = getattr(self.stub, rpc)(outgoing(), timeout=timeout, metadata=self._metadata(token))
        try:
            async for response in call:
                yield cast(R, response)
        except grpc.aio.AioRpcError as failure:
            raise from_rpc_error(failure) from failure
        finally:
            call.cancel()


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
                response = method(
                    request, timeout=self._attempt_timeout(timeout, started), metadata=metadata
                )
                return cast(R, response)
            except grpc.RpcError as failure:
                error = from_rpc_error(failure)
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
        call = getattr(self.stub, rpc)(request, timeout=timeout, metadata=self._metadata(token))
        try:
            for response in call:
                yield cast(R, response)
        except grpc.RpcError as failure:
            raise from_rpc_error(failure) from failure
        finally:
            call.cancel()

    def stream_stream(
        self,
        rpc: str,
        requests: Iterable[M],
        prepare: Callable[[M], M],
        response_type: type[R],
        timeout: float | None,
        token: str | None,
    ) -> Iterator[R]:
        outgoing = (prepare(item) for item in requests)
        call = getattr(self.stub, rpc)(outgoing, timeout=timeout, metadata=self._metadata(token))
        try:
            for response in call:
                yield cast(R, response)
        except grpc.RpcError as failure:
            raise from_rpc_error(failure) from failure
        finally:
            call.cancel()
