"""`agent_run(run_id)`: everything the clients send inside it belongs to that agent run.

Inside the block (a contextvar, so it follows asyncio tasks and `asyncio.to_thread`):

- every call carries gRPC metadata `x-agent-run-id: <run_id>`;
- Authorize, Charge and RecordUsage requests (and AuthorizeStream / StreamUsage items) whose
  `agent_run_id` is empty get the run id, so run caps and the ledger see it;
- OpenTelemetry baggage `agent_run_id` is set, so spans and downstream services see it too
  (and the clients propagate the baggage and trace context as gRPC metadata).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar, Token
from types import TracebackType

from google.protobuf.message import Message
from opentelemetry import baggage, context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from keyleash.client.config import tracing_configured

RUN_ID_METADATA_KEY = "x-agent-run-id"
RUN_ID_BAGGAGE_KEY = "agent_run_id"

_RUN_ID: ContextVar[str | None] = ContextVar("keyleash_agent_run_id", default=None)


def current_run_id() -> str | None:
    """The run id of the innermost `agent_run` block, or None outside one."""
    return _RUN_ID.get()


def new_run_id() -> str:
    return "run-" + uuid.uuid4().hex


class agent_run:
    """Context manager (sync and async) stamping `run_id` on every call made inside it.

    `with agent_run() as run_id:` generates a run id when none is given.
    """

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self._token: Token[str | None] | None = None
        self._otel_token: object | None = None

    def __enter__(self) -> str:
        self._token = _RUN_ID.set(self.run_id)
        self._otel_token = context.attach(baggage.set_baggage(RUN_ID_BAGGAGE_KEY, self.run_id))
        return self.run_id

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._otel_token is not None:
            context.detach(self._otel_token)  # type: ignore[arg-type]
            self._otel_token = None
        if self._token is not None:
            _RUN_ID.reset(self._token)
            self._token = None

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """gRPC metadata for one call: the bearer token, the run id, OpenTelemetry context."""
    metadata: list[tuple[str, str]] = []
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    run_id = current_run_id()
    if run_id:
        metadata.append((RUN_ID_METADATA_KEY, run_id))
    # Baggage (agent_run_id) goes on every call, also over channels the caller brought; the trace
    # context itself is injected by OpenTelemetry's client interceptors on our channels, which
    # exist only while tracing is configured (config.py): else it is injected here, if any.
    carrier: dict[str, str] = {}
    W3CBaggagePropagator().inject(carrier)
    if not tracing_configured() and trace.get_current_span().get_span_context().is_valid:
        TraceContextTextMapPropagator().inject(carrier)
    metadata.extend((name.lower(), value) for name, value in carrier.items())
    return tuple(metadata)


def stamp_run_id(request: Message) -> None:
    """Fills `agent_run_id` from the current run when the request has the field and it is empty."""
    run_id = current_run_id()
    if run_id and not getattr(request, "agent_run_id", "x"):
        request.agent_run_id = run_id  # type: ignore[attr-defined]
