"""What both gRPC servers share: the call guard (error mapping, agent run), health, reflection,
shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AsyncHealthServicer
from grpc_reflection.v1alpha import reflection

from keyleash_core.auth import FailedAttemptLimiter
from keyleash_core.errors import (
    KeyleashError,
    ResourceExhausted,
    Unauthenticated,
    Unimplemented,
    internal_status,
    to_rpc_status,
)
from keyleash_core.reasons import ErrorReason
from keyleash_core.settings import TlsSettings
from keyleash_core.telemetry import bind_agent_run

log = logging.getLogger("keyleash.server")

Behavior = Callable[..., Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class CallGuard:
    """What every Keyleash RPC gets: the failed-credential throttle, its agent run bound, and
    KeyleashError turned into a rich status (anything else into a bare INTERNAL), so servicers
    stay thin and no traceback ever reaches a caller.

    Applied to each method's handler once, at registration (GuardedRegistrar), not as a
    per-call interceptor: grpc.aio's interceptor chain costs on every call.
    """

    def __init__(self, domain: str, limiter: FailedAttemptLimiter | None = None) -> None:
        self._domain = domain
        self._limiter = limiter or FailedAttemptLimiter()

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler with the guard around its behaviour, whichever of the four kinds."""
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap_unary(self, behavior: Behavior, method: str) -> Behavior:
        async def wrapped(request: Any, context: Context) -> Any:
            try:
                bind_agent_run(context)
                self._check_peer(context)
                return await behavior(request, context)
            except Exception as error:
                await self._abort(error, context, method)

        return wrapped

    def _wrap_stream(self, behavior: Behavior, method: str) -> Behavior:
        async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                bind_agent_run(context)
                self._check_peer(context)
                async for response in behavior(request, context):
                    yield response
            except Exception as error:
                await self._abort(error, context, method)

        return wrapped

    def _check_peer(self, context: Context) -> None:
        wait = self._limiter.retry_after(context.peer() or "")
        if wait:
            raise ResourceExhausted(
                "too many failed credential attempts from this peer",
                reason=ErrorReason.TOO_MANY_ATTEMPTS,
                retry_after_seconds=wait,
            )

    async def _abort(self, error: Exception, context: Context, method: str) -> None:
        if isinstance(error, Unauthenticated):
            self._limiter.failed(context.peer() or "")
        if isinstance(error, grpc.aio.AbortError):
            raise error
        if isinstance(error, NotImplementedError):
            # The generated base servicer's answer for an RPC that is not written yet.
            error = Unimplemented(f"{method.rsplit('/', 1)[-1]} is not implemented yet")
        if isinstance(error, KeyleashError):
            status = to_rpc_status(error, self._domain)
            code = grpc.StatusCode[error.status]
        else:
            log.exception("unhandled error in %s", method)
            status = internal_status(self._domain)
            code = grpc.StatusCode.INTERNAL
        await context.abort(
            code,
            status.message,
            trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
        )


class _GuardedGenericHandler(grpc.ServiceRpcHandler):
    """A generic handler whose method handlers come out guarded (each built once)."""

    def __init__(self, inner: grpc.GenericRpcHandler, guard: CallGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def service_name(self) -> str:
        name = getattr(self._inner, "service_name", None)
        return str(name()) if callable(name) else ""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._guard.wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class GuardedRegistrar:
    """What `register` gets instead of the server: the generated add_*_to_server functions
    register through it, and every method handler is wrapped by the guard on the way in."""

    def __init__(self, server: grpc.aio.Server, guard: CallGuard) -> None:
        self._server = server
        self._guard = guard

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            [_GuardedGenericHandler(handler, self._guard) for handler in handlers]
        )

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self._server.add_registered_method_handlers(
            service,
            {
                name: self._guard.wrap(handler, f"/{service}/{name}")
                for name, handler in handlers.items()
            },
        )


async def add_health_and_reflection(
    server: grpc.aio.Server, service_names: Iterable[str]
) -> AsyncHealthServicer:
    """Registers grpc.health.v1 (all SERVING) and v1alpha reflection (grpcurl list/describe)."""
    health_servicer = AsyncHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    for name in [*names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return health_servicer


async def serve_until_signalled(
    server: grpc.aio.Server,
    on_stop: Callable[[], Awaitable[None]],
    health_servicer: AsyncHealthServicer | None = None,
    grace_seconds: float = 10.0,
) -> None:
    """Runs until SIGTERM/SIGINT, then drains: in-flight RPCs get `grace_seconds` to finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining in-flight RPCs")
    if health_servicer is not None:
        await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_seconds)
    await on_stop()


class BuiltServer:
    """A started gRPC server, the port it bound, and how to release what it holds."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        health_servicer: AsyncHealthServicer,
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer
        self._on_close = on_close

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stops accepting calls, lets in-flight ones finish, then closes the stores."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_seconds)
        await self._on_close()

    async def serve_until_signalled(self, grace_seconds: float = 10.0) -> None:
        await serve_until_signalled(self.server, self._on_close, self.health, grace_seconds)


async def start_grpc_server(
    address: str,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    *,
    domain: str,
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
    on_close: Callable[[], Awaitable[None]],
    tls: TlsSettings | None = None,
    reuse_port: bool = False,
) -> BuiltServer:
    """Builds and starts a grpc.aio server: interceptors, servicers, health, reflection."""
    server = grpc.aio.server(
        interceptors=list(interceptors),
        options=[
            # Several processes of one service may share a port (one per core) when asked;
            # off by default so a second `keyleash up` fails loudly instead of splitting calls.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ],
    )
    registrar = GuardedRegistrar(server, CallGuard(domain))
    service_names = list(register(cast(grpc.aio.Server, registrar)))
    health_servicer = await add_health_and_reflection(server, service_names)
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.private_key, tls.certificate_chain)],
                root_certificates=tls.client_ca,
                require_client_auth=tls.client_ca is not None,
            )
            port = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpc's word for "could not bind"
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address} (in use, or not an address of this machine)")
    await server.start()
    return BuiltServer(server, port, health_servicer, on_close)
