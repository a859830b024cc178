"""Property-based fuzzing of every RPC's request message against real server processes.

Whatever the request — huge or odd strings, unknown enum values, extreme numbers, bad durations,
mismatched currencies — the answer is a well-formed status (never INTERNAL or UNKNOWN), and the
servers stay healthy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyleash.metering.v1 import alerts_pb2, metering_pb2, metering_pb2_grpc
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN, Stores, service_env
from tests.typed_stubs import health_stub

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

INT64 = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 10**15, 10**15 + 1, 2**53 + 1, 2**63 - 1, -(2**63)]),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", "USD", "usd", "EUR", "tenants/t/keys/k", "vk_" + "A" * 49, "\x00", "é" * 300]
    ),
    st.text(min_size=2000, max_size=5000),
)


def scalar(field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == d.FieldDescriptor.TYPE_STRING:
        return TEXT
    if kind == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == d.FieldDescriptor.TYPE_ENUM:
        # Proto3 enums are open: unknown values must be handled too.
        assert field.enum_type is not None  # every enum field names its enum
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    if kind in (
        d.FieldDescriptor.TYPE_INT32,
        d.FieldDescriptor.TYPE_SINT32,
        d.FieldDescriptor.TYPE_SFIXED32,
    ):
        return st.integers(-(2**31), 2**31 - 1)
    if kind in (d.FieldDescriptor.TYPE_UINT32, d.FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if kind in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=False, width=32)
    return INT64


def message(
    descriptor: d.Descriptor, cls: type[Message], depth: int = 0
) -> st.SearchStrategy[Message]:
    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for field in descriptor.fields:
            if not draw(st.booleans()):
                continue
            repeated = field.is_repeated if hasattr(field, "is_repeated") else False
            if field.message_type is not None:
                if field.message_type.GetOptions().map_entry:
                    entries = draw(st.dictionaries(TEXT, TEXT, max_size=4))
                    target = getattr(msg, field.name)
                    value_field = field.message_type.fields_by_name["value"]
                    if value_field.type == d.FieldDescriptor.TYPE_STRING:
                        target.update(entries)
                    continue
                if depth > 3:
                    continue
                if repeated:
                    container = getattr(msg, field.name)
                    for _ in range(draw(st.integers(0, 3))):
                        item = container.add()
                        item.MergeFrom(draw(message(field.message_type, type(item), depth + 1)))
                else:
                    sub = getattr(msg, field.name)
                    sub.MergeFrom(draw(message(field.message_type, type(sub), depth + 1)))
                continue
            if repeated:
                getattr(msg, field.name).extend(draw(st.lists(scalar(field), max_size=4)))
            else:
                setattr(msg, field.name, draw(scalar(field)))
        return msg

    return build()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def servers(stores: Stores) -> Iterator[dict[str, str]]:
    """Both services as their own processes (python -m ...), as deployed."""
    ports = {"vault": free_port(), "metering": free_port()}
    env = (
        os.environ
        | service_env(stores)
        | {
            "KEYLEASH_VAULT_LISTEN": f"127.0.0.1:{ports['vault']}",
            "KEYLEASH_METERING_LISTEN": f"127.0.0.1:{ports['metering']}",
            "KEYLEASH_LOG_LEVEL": "ERROR",
        }
    )
    procs = [
        subprocess.Popen([sys.executable, "-m", f"{name}_service"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in ports
    ]  # fmt: skip
    targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    try:
        for target in targets.values():
            wait_serving(target)
        yield targets
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def wait_serving(target: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(target) as channel:
        while True:
            try:
                reply = health_stub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{target} did not become healthy")
            time.sleep(0.1)


def rpcs() -> list[tuple[str, d.MethodDescriptor, Any, Any]]:
    found = []
    for service, module, grpc_module in (
        ("vault", vault_pb2, vault_pb2_grpc),
        ("metering", metering_pb2, metering_pb2_grpc),
    ):
        for svc in module.DESCRIPTOR.services_by_name.values():
            for method in svc.methods:
                found.append((service, method, module, grpc_module))
    return found


def request_class(module: Any, method: d.MethodDescriptor) -> type[Message]:
    for candidate in (module, vault_pb2, metering_pb2, alerts_pb2):
        cls = getattr(candidate, method.input_type.name, None)
        if cls is not None and cls.DESCRIPTOR is method.input_type:
            return cls  # type: ignore[no-any-return]
    raise AssertionError(method.full_name)


@pytest.mark.parametrize(
    ("service", "method", "module", "grpc_module"), rpcs(), ids=lambda v: getattr(v, "name", str(v))
)
def test_every_rpc_answers_with_a_well_formed_status(
    servers: dict[str, str], service: str, method: d.MethodDescriptor, module: Any, grpc_module: Any
) -> None:
    cls = request_class(module, method)
    channel = grpc.insecure_channel(servers[service])
    stub_cls = getattr(grpc_module, method.containing_service.name + "Stub")
    call = getattr(stub_cls(channel), method.name)

    @settings(
        max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(
        # method.input_type is cls.DESCRIPTOR (request_class checks it), typed as a Descriptor.
        message(method.input_type, cls),
        st.sampled_from([ADMIN_TOKEN, SERVICE_TOKEN, "vk_bogus", ""]),
    )
    def fuzz(request: Message, token: str) -> None:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            if method.client_streaming:
                replies = call(iter([request, request]), metadata=metadata, timeout=10)
                list(replies) if method.server_streaming else None
            elif method.server_streaming:
                list(call(request, metadata=metadata, timeout=10))
            else:
                call(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            assert error.code() not in FORBIDDEN, (
                f"{method.full_name}: {error.code()} {error.details()}"
            )

    try:
        fuzz()
    finally:
        channel.close()
    wait_serving(servers[service], seconds=5)
