"""The call guard applied at registration: errors become rich statuses (a bug a bare INTERNAL,
never its traceback), and the agent run is read from the metadata with no OpenTelemetry
interceptor installed. A real grpc.aio server in-process; no store involved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from keyleash_core.errors import InvalidArgument
from keyleash_core.grpc_server import BuiltServer, start_grpc_server
from keyleash_core.telemetry import agent_run_id_of

SERVICE = "test.Guarded"


def _identity(data: bytes) -> bytes:
    return data


async def _echo_run(request: bytes, context: Any) -> bytes:
    return agent_run_id_of(context).encode()


async def _invalid(request: bytes, context: Any) -> bytes:
    raise InvalidArgument("thing", "must be set")


async def _bug(request: bytes, context: Any) -> bytes:
    raise RuntimeError("secret detail in a traceback")


def _register(server: grpc.aio.Server) -> list[str]:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=_identity, response_serializer=_identity
        )
        for name, behavior in (("Run", _echo_run), ("Invalid", _invalid), ("Bug", _bug))
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)
    return [SERVICE]


@pytest.fixture
async def guarded() -> AsyncIterator[BuiltServer]:
    async def nothing() -> None:
        return None

    built = await start_grpc_server(
        "127.0.0.1:0", _register, domain="test.keyleash", on_close=nothing
    )
    yield built
    await built.stop(0)


async def _call(
    built: BuiltServer, method: str, metadata: tuple[tuple[str, str], ...] = ()
) -> bytes:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{built.port}") as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/{method}", request_serializer=_identity, response_deserializer=_identity
        )
        return bytes(await call(b"", metadata=metadata))


def _details(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no status details")


@pytest.mark.parametrize(
    ("metadata", "run"),
    [
        ((("baggage", "team=a, agent_run_id = run%20one ;prop=1"),), "run one"),
        ((("x-agent-run-id", "run-header"),), "run-header"),
        ((("x-agent-run-id", "loser"), ("baggage", "agent_run_id=winner")), "winner"),
        ((("baggage", "my_agent_run_id=x,other=y"),), ""),
        ((), ""),
    ],
)
async def test_the_agent_run_comes_from_the_metadata(
    guarded: BuiltServer, metadata: tuple[tuple[str, str], ...], run: str
) -> None:
    assert await _call(guarded, "Run", metadata) == run.encode()


async def test_errors_become_rich_statuses_and_bugs_a_bare_internal(
    guarded: BuiltServer,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await _call(guarded, "Invalid")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_details_pb2.ErrorInfo()
    assert _details(invalid.value).details[0].Unpack(info)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "test.keyleash")
    with pytest.raises(grpc.aio.AioRpcError) as bug:
        await _call(guarded, "Bug")
    assert bug.value.code() == grpc.StatusCode.INTERNAL
    assert bug.value.details() == "internal error"
    assert "secret detail" not in str(_details(bug.value))
