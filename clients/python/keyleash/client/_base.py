"""What the four clients share: connection settings, channel ownership, request preparation."""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

from google.protobuf.message import Message

from keyleash.client._transport import AsyncInvoker, SyncInvoker, build_request
from keyleash.client.config import (
    DEFAULT_TARGETS,
    DEFAULT_TIMEOUT,
    Connection,
    PemSource,
    env_settings,
)
from keyleash.client.retry import DEFAULT_RETRY, RetryPolicy
from keyleash.client.run import current_run_id

M = TypeVar("M", bound=Message)


def named_request(
    message_type: type[M],
    request: M | str | None,
    fields: Mapping[str, Any],
    field_name: str = "name",
) -> M:
    """Like build_request, but a plain string is the value of `field_name` (e.g. a key name)."""
    if isinstance(request, str):
        return build_request(message_type, None, {**fields, field_name: request})
    return build_request(message_type, request, fields)


def run_stamper(*, request_id: bool = False) -> Callable[[M], M]:
    """Prepares requests with the run id current *now* (and a fresh request_id when empty)."""
    run_id = current_run_id()

    def prepare(request: M) -> M:
        needs_run = bool(run_id) and not getattr(request, "agent_run_id", "x")
        needs_id = request_id and not getattr(request, "request_id", "x")
        if not (needs_run or needs_id):
            return request
        prepared = type(request)()
        prepared.CopyFrom(request)
        if needs_run:
            prepared.agent_run_id = run_id  # type: ignore[attr-defined]
        if needs_id:
            prepared.request_id = uuid.uuid4().hex  # type: ignore[attr-defined]
        return prepared

    return prepare


class _ClientBase(ABC):
    """Connection settings; subclasses add the channel and the stub."""

    TARGET_ENV: ClassVar[str]

    def __init__(
        self,
        target: str | None = None,
        *,
        token: str | None = None,
        tls: bool | None = None,
        root_certificates: PemSource | None = None,
        private_key: PemSource | None = None,
        certificate_chain: PemSource | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        options: Sequence[tuple[str, Any]] = (),
        channel: Any = None,
    ) -> None:
        if not target and channel is None:
            raise ValueError(f"a target is required (or use from_env() and {self.TARGET_ENV})")
        self.connection = Connection.resolve(
            target or "",
            token=token,
            tls=tls,
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
            options=options,
        )
        self._owns_channel = channel is None
        self._bind(channel, timeout, retry)

    @abstractmethod
    def _bind(self, channel: Any, timeout: float | None, retry: RetryPolicy) -> None:
        """Open (or adopt) the channel and build the invoker for it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """A client configured from KEYLEASH_* variables; keyword arguments win."""
        settings = env_settings(cls.TARGET_ENV, env)
        settings.update(overrides)
        return cls(**settings)

    def _unreachable(self) -> str:
        """What an UNAVAILABLE from no server at all adds: the address tried, and the variable."""
        default = DEFAULT_TARGETS.get(self.TARGET_ENV, "")
        return (
            f"nothing answered at {self.target}; set {self.TARGET_ENV} to the service's address"
            f" (from_env() uses {default} when it is unset, where `keyleash up` listens)"
        )

    @property
    def token(self) -> str | None:
        """The default bearer token of this client's calls (None: calls carry no credential)."""
        return self.connection.token

    @property
    def target(self) -> str:
        return self.connection.target

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.target!r}, tls={self.connection.tls})"


class AsyncClientBase(_ClientBase):
    """A grpc.aio channel (owned unless one was passed) and an AsyncInvoker."""

    def _bind(self, channel: Any, timeout: float | None, retry: RetryPolicy) -> None:
        self.channel: Any = channel if channel is not None else self.connection.aio_channel()
        self._invoker = AsyncInvoker(
            self._make_stub(self.channel), self.token, timeout, retry, self._unreachable()
        )

    @abstractmethod
    def _make_stub(self, channel: Any) -> Any:
        """The generated stub of this client's service on `channel`."""

    async def close(self) -> None:
        """Closes the channel if this client opened it."""
        if self._owns_channel:
            await self.channel.close()

    async def _pause(self, seconds: float) -> None:
        """Waits between polls (wait_for_approval)."""
        await asyncio.sleep(seconds)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class SyncClientBase(_ClientBase):
    """A blocking grpc channel (owned unless one was passed) and a SyncInvoker."""

    def _bind(self, channel: Any, timeout: float | None, retry: RetryPolicy) -> None:
        self.channel: Any = channel if channel is not None else self.connection.sync_channel()
        self._invoker = SyncInvoker(
            self._make_stub(self.channel), self.token, timeout, retry, self._unreachable()
        )

    @abstractmethod
    def _make_stub(self, channel: Any) -> Any:
        """The generated stub of this client's service on `channel`."""

    def close(self) -> None:
        """Closes the channel if this client opened it."""
        if self._owns_channel:
            self.channel.close()

    def _pause(self, seconds: float) -> None:
        """Waits between polls (wait_for_approval)."""
        time.sleep(seconds)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
