"""What every vendor module provides: where the SDK puts its secret, what a request is (scope,
estimated cost, attributes), what the vendor's answer says it cost, and how a streamed answer
(server-sent events) is metered while it passes through.

Vendor modules are pure: bytes and headers in, values out; no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

from keyleash_core.llm_prices import ModelPrice, TokenCounts
from keyleash_core.money import Money


class UnknownEndpoint(Exception):
    """The method and path are not in the vendor's endpoint table: the gateway refuses (403)."""


class BadRequestBody(Exception):
    """The body cannot be read as the vendor's format, or lacks what the estimate needs (400)."""


class UnknownModel(Exception):
    """The request names an LLM model the price table lacks: refused (MODEL_UNKNOWN), never
    priced at zero."""


@dataclass(frozen=True)
class LlmCall:
    """An LLM request as the gateway prices it: the model's price from one table version, the
    worst-case tokens the hold was computed from, and how its answer comes back."""

    model: str
    price: ModelPrice
    table_version: str
    estimate: TokenCounts
    stream: bool
    strip_usage: bool = False  # the gateway asked for a usage chunk the caller did not want
    # Where `price` comes from when it is not the table's: "tenant:<tenant_id>" (Metering's
    # GetTenantModelPrice); the charge records it as its cost_source.
    price_source: str = ""


@dataclass(frozen=True)
class LlmUsage:
    """The tokens a charge was priced with. `reported`: the vendor said so; False: some or all
    counts are the estimate's (a cut stream, an answer without usage)."""

    model: str
    tokens: TokenCounts
    reasoning_tokens: int
    table_version: str
    reported: bool


@dataclass(frozen=True)
class Lookup:
    """A request whose price lies in an object upstream (confirming a PaymentIntent moves the
    intent's amount, which the confirm request does not carry): before deciding, the gateway
    GETs `path` with the connection's secret, and `complete` turns that answer into the endpoint
    to authorize (estimate and attributes), or raises BadRequestBody."""

    path: str
    complete: Callable[[bytes], Endpoint]


@dataclass(frozen=True)
class Endpoint:
    """One recognised vendor request, as Authorize needs it."""

    name: str  # a stable label of the table row, e.g. "charges.create"
    scope: str
    estimate: Money | None  # None: the call holds nothing (reads, refunds)
    attributes: Mapping[str, str] = field(default_factory=dict)
    cost_source: str = "vendor_response"
    lookup: Lookup | None = None  # set: the estimate comes from an upstream read first
    upstream_body: bytes | None = None  # None: forward the agent's body unchanged
    llm: LlmCall | None = None


@dataclass(frozen=True)
class Cost:
    """What a forwarded call cost, from the vendor's answer (negative for refunds)."""

    amount: Money
    source: str  # "vendor_response", or the price table that produced it
    vendor_request_id: str = ""
    usage: LlmUsage | None = None  # LLM calls: the tokens the amount was priced with


class StreamMeter(Protocol):
    """Watches one streamed answer pass through: `feed` gets each chunk the vendor sent and
    returns the bytes for the agent (usually the same), `flush` what is left at the end, `cost`
    what the stream cost (`complete`: it ended normally; False: cut by either side)."""

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def cost(self, complete: bool) -> Cost | None: ...


class Vendor(Protocol):
    """A vendor module."""

    name: str
    default_base_url: str

    def vault_key(self, headers: Mapping[str, str]) -> str | None:
        """The vault key where the vendor's SDK puts its secret, or None."""

    def upstream_auth(self, headers: Mapping[str, str], secret: str) -> dict[str, str]:
        """The headers that carry the real secret upstream."""

    def describe(
        self, method: str, path: str, query: str, content_type: str, body: bytes
    ) -> Endpoint:
        """The endpoint a request is; UnknownEndpoint or BadRequestBody otherwise."""

    def cost(self, endpoint: Endpoint, status: int, body: bytes) -> Cost | None:
        """What the answered call cost; zero for definite failures; None when the answer does
        not settle it (the outcome is unknown and the hold stays)."""

    def stream_meter(self, endpoint: Endpoint, status: int) -> StreamMeter:
        """The meter of a streamed (text/event-stream) answer to this endpoint."""


class PassThroughMeter:
    """A streamed answer from a vendor whose streams carry no cost: passed through unchanged;
    a 2xx costs the estimate, a 4xx nothing, a 5xx leaves the outcome unknown (hold kept)."""

    def __init__(self, endpoint: Endpoint, status: int) -> None:
        self._endpoint = endpoint
        self._status = status

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def flush(self) -> bytes:
        return b""

    def cost(self, complete: bool) -> Cost | None:
        estimate = self._endpoint.estimate
        if self._status >= 500:
            return None
        if self._status >= 300 or estimate is None:
            return Cost(Money(estimate.currency if estimate else "USD", 0), "vendor_response")
        return Cost(estimate, "estimate")


def pass_through_meter(endpoint: Endpoint, status: int) -> StreamMeter:
    return PassThroughMeter(endpoint, status)


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def form_fields(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the last value of a repeated field wins)."""
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        raise BadRequestBody("the form body is not UTF-8") from None


def form_lists(body: bytes) -> dict[str, list[str]]:
    """Every value of every field of a form body, in order."""
    out: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise BadRequestBody("the form body is not UTF-8") from None
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError):
        raise BadRequestBody("the body is not JSON") from None


def json_object(body: bytes) -> dict[str, Any]:
    """The answer's JSON object, or {} when it is none (costs then fall back)."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def path_segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]
