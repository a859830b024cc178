"""Typed views of the health and reflection stubs the tests call.

types-grpcio-health-checking declares `HealthStub` without its methods (grpc sets them on the
instance in `__init__`), and types-grpcio-reflection types `ServerReflectionInfo` as Incomplete
and its channel as blocking only. These Protocols say what the generated stubs have; the casts
here are the one place that trusts them.
"""

from __future__ import annotations

from typing import Protocol, cast, overload

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


class Health(Protocol):
    Check: grpc.UnaryUnaryMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ]


class AsyncHealth(Protocol):
    Check: grpc.aio.UnaryUnaryMultiCallable[
        health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    ]


class Reflection(Protocol):
    ServerReflectionInfo: grpc.StreamStreamMultiCallable[
        reflection_pb2.ServerReflectionRequest, reflection_pb2.ServerReflectionResponse
    ]


class AsyncReflection(Protocol):
    ServerReflectionInfo: grpc.aio.StreamStreamMultiCallable[
        reflection_pb2.ServerReflectionRequest, reflection_pb2.ServerReflectionResponse
    ]


@overload
def health_stub(channel: grpc.aio.Channel) -> AsyncHealth: ...
@overload
def health_stub(channel: grpc.Channel) -> Health: ...
def health_stub(channel: grpc.Channel | grpc.aio.Channel) -> Health | AsyncHealth:
    """`grpc.health.v1.Health` on a blocking or a grpc.aio channel."""
    return cast(Health | AsyncHealth, health_pb2_grpc.HealthStub(channel))


@overload
def reflection_stub(channel: grpc.aio.Channel) -> AsyncReflection: ...
@overload
def reflection_stub(channel: grpc.Channel) -> Reflection: ...
def reflection_stub(channel: grpc.Channel | grpc.aio.Channel) -> Reflection | AsyncReflection:
    """`grpc.reflection.v1alpha.ServerReflection` on a blocking or a grpc.aio channel."""
    # types-grpcio-reflection types the channel as blocking only; the stub works on grpc.aio too.
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
    return cast(Reflection | AsyncReflection, stub)
