"""Where a client connects and with which credentials: arguments first, then `KEYLEASH_*`.

Environment (read by `from_env()`; `KEYLEASH_TOKEN` also by the constructors):

| variable                   | meaning                                                         |
|----------------------------|-----------------------------------------------------------------|
| `KEYLEASH_VAULT_TARGET`    | vault address (gRPC target syntax); unset: `localhost:50051`    |
| `KEYLEASH_METERING_TARGET` | metering address; unset: `localhost:50052`                      |
| `KEYLEASH_TOKEN`           | bearer token: an admin or service token, or a key secret `vk_…` |
| `KEYLEASH_TLS_CA`          | path of a PEM root certificate bundle; setting it turns TLS on  |
| `KEYLEASH_TLS`             | `1`/`true`: TLS with the system roots (when no CA file is set)  |
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

# PEM bytes, PEM text ("-----BEGIN ..."), or the path of a PEM file.
PemSource = bytes | str | os.PathLike[str]

TOKEN_ENV = "KEYLEASH_TOKEN"
TLS_CA_ENV = "KEYLEASH_TLS_CA"
TLS_ENV = "KEYLEASH_TLS"
VAULT_TARGET_ENV = "KEYLEASH_VAULT_TARGET"
METERING_TARGET_ENV = "KEYLEASH_METERING_TARGET"
DEFAULT_TIMEOUT = 10.0
# Where `keyleash up` (and the CLI's defaults) put the services on this machine.
DEFAULT_TARGETS = {VAULT_TARGET_ENV: "localhost:50051", METERING_TARGET_ENV: "localhost:50052"}


def load_pem(source: PemSource | None) -> bytes | None:
    """PEM bytes from bytes, PEM text or a file path."""
    if source is None or isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode("ascii")
    return Path(source).read_bytes()


@dataclass(frozen=True)
class Connection:
    """Resolved connection settings of one client."""

    target: str
    token: str | None
    tls: bool
    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    options: Sequence[tuple[str, Any]] = field(default_factory=tuple)

    @classmethod
    def resolve(
        cls,
        target: str,
        *,
        token: str | None = None,
        tls: bool | None = None,
        root_certificates: PemSource | None = None,
        private_key: PemSource | None = None,
        certificate_chain: PemSource | None = None,
        options: Sequence[tuple[str, Any]] = (),
        env: Mapping[str, str] | None = None,
    ) -> Connection:
        """Arguments win; `token` None falls back to KEYLEASH_TOKEN. TLS is on when asked for
        or when any certificate material is given."""
        env = os.environ if env is None else env
        roots, key, chain = (
            load_pem(root_certificates),
            load_pem(private_key),
            load_pem(certificate_chain),
        )
        if tls is None:
            tls = any(x is not None for x in (roots, key, chain))
        if not tls and any(x is not None for x in (roots, key, chain)):
            raise ValueError("certificates given with tls=False")
        if token is None:
            token = env.get(TOKEN_ENV) or None
        return cls(target, token, tls, roots, key, chain, tuple(options))

    def credentials(self) -> Any:
        """grpc.ChannelCredentials for TLS (None for a plaintext channel)."""
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def aio_channel(self) -> Any:
        """A new grpc.aio channel to the target."""
        creds = self.credentials()
        # OpenTelemetry's client interceptors (a client span per call, the trace context in the
        # metadata) only when spans are collected: an interceptor chain costs on every call even
        # when its spans go nowhere. Without it, call_metadata still sends the baggage
        # (agent_run_id) and any current trace context.
        interceptors = (
            aio_client_interceptors()  # type: ignore[no-untyped-call]
            if tracing_configured()
            else None
        )
        if creds is None:
            return grpc.aio.insecure_channel(
                self.target, options=list(self.options), interceptors=interceptors
            )
        return grpc.aio.secure_channel(
            self.target, creds, options=list(self.options), interceptors=interceptors
        )

    def sync_channel(self) -> Any:
        """A new blocking grpc channel to the target."""
        creds = self.credentials()
        if creds is None:
            channel = grpc.insecure_channel(self.target, options=list(self.options))
        else:
            channel = grpc.secure_channel(self.target, creds, options=list(self.options))
        return intercept_channel(channel, client_interceptor())  # type: ignore[no-untyped-call]


def tracing_configured() -> bool:
    """True once a real tracer provider is installed; the API's default proxy means nobody
    collects spans. Channels are made with or without client spans by what it says then."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def env_settings(target_env: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Constructor arguments from the environment (for `from_env()`)."""
    env = os.environ if env is None else env
    target = env.get(target_env, "").strip() or DEFAULT_TARGETS.get(target_env, "")
    if not target:
        raise ValueError(f"{target_env} is not set (e.g. {target_env}=localhost:50051)")
    settings: dict[str, Any] = {"target": target, "token": env.get(TOKEN_ENV) or None}
    ca = env.get(TLS_CA_ENV, "")
    if ca:
        settings["root_certificates"] = ca
        settings["tls"] = True
    elif env.get(TLS_ENV, "").lower() in ("1", "true", "yes", "on"):
        settings["tls"] = True
    return settings
