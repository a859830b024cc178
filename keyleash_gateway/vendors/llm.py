"""What the LLM vendors share: the price table, the pre-flight estimate, pricing the vendor's
reported usage, and reading server-sent events as they pass through (pure, no I/O).

**Estimate (the hold).** Input tokens are bounded without a tokenizer: every token the vendors'
byte-level tokenizers produce covers at least one byte of UTF-8 text, so the request body's size
in bytes (which contains every prompt, system, tool and schema text plus the JSON around it) is
at least the number of text tokens and their per-message overhead. An image referenced by URL
adds IMAGE_TOKENS_BOUND (above both vendors' documented per-image maximum). Output tokens are
`max_tokens` / `max_completion_tokens` / `max_output_tokens` (x `n` choices), else the model's
documented maximum from the table (`max_output_tokens`). The hold prices the input bound at the
dearer of the input and cache-write prices, and the output at the output price, from the same
table version the charge is priced with. A model the table lacks is refused, never priced at 0.

**Tenant prices.** A tenant with its own price for the model (Metering's SetTenantModelPrice)
is held and charged at that price instead (`with_tenant_price`, fetched by tenant_prices.py):
the hold and the charge are the same formula over the price RecordUsage uses; its cache-write
tokens at its input price (a tenant price has no cache-write price of its own, as at Metering).

**Charge.** The vendor's own usage (prompt, completion, cached / cache-read, cache-write and
reasoning tokens) priced from that table: ceil(sum of tokens x price / 1e6) micros. An answer or
stream that reports no usage is charged the estimate (`usage=estimated`), a stream cut by either
side its reported counts and the estimate for what was not reported; never zero.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from keyleash_core.llm_prices import (
    CURRENCY,
    ModelPrice,
    PriceTable,
    TokenCounts,
    load_price_table,
    tokens_cost_micros,
)
from keyleash_core.money import Money
from keyleash_gateway.vendors.base import (
    BadRequestBody,
    Cost,
    Endpoint,
    LlmCall,
    LlmUsage,
    UnknownModel,
)

PRICES = load_price_table()
# Above OpenAI's (85 + 170 x 8 tiles = 1,445) and Anthropic's (~1,600) documented image maxima.
IMAGE_TOKENS_BOUND = 1600
# A dated snapshot of a listed model is priced as the model: "gpt-4o-2024-08-06",
# "claude-sonnet-4-20250514"; nothing else is inferred (gpt-4o-mini is not gpt-4o).
_SNAPSHOT = re.compile(r"^(?P<base>.+?)-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
# An event longer than this is passed on unread (memory stays bounded whatever the vendor sends).
MAX_EVENT_BYTES = 1024 * 1024
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def model_price(model: str, table: PriceTable = PRICES) -> ModelPrice:
    """The listed model (or the model a dated snapshot belongs to); UnknownModel otherwise."""
    price = table.get(model)
    if price is None:
        match = _SNAPSHOT.match(model)
        price = table.get(match.group("base")) if match else None
    if price is None:
        raise UnknownModel(model)
    return price


def requested_model(payload: Mapping[str, Any]) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequestBody("`model` is required")
    return model


def positive_int(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequestBody(f"`{name}` must be a positive integer")
    return value


def output_bound(price: ModelPrice, requested: int | None, choices: int = 1) -> int:
    """The most output tokens the call may produce: what it asks for, else the model's max."""
    if requested is None:
        requested = price.max_output_tokens
    return requested * choices


def image_urls(value: Any) -> int:
    """How many images the request references by URL (inline base64 is counted as bytes)."""
    if isinstance(value, dict):
        own = 1 if value.get("type") in ("image_url", "input_image") else 0
        source = value.get("source")
        if value.get("type") == "image" and isinstance(source, dict):
            own = 1 if source.get("type") == "url" else 0
        return own + sum(image_urls(v) for v in value.values())
    if isinstance(value, list):
        return sum(image_urls(v) for v in value)
    return 0


def input_bound(body: bytes, payload: Any) -> int:
    """At least the input tokens of the request (see the module docstring)."""
    return len(body) + IMAGE_TOKENS_BOUND * image_urls(payload)


def hold_micros(price: ModelPrice, estimate: TokenCounts) -> int:
    dearest_input = max(price.input_per_million_micros, price.cache_write_price)
    worst = replace(price, input_per_million_micros=dearest_input)
    return tokens_cost_micros(worst, estimate)


@dataclass(frozen=True)
class LlmRequest:
    """What a vendor module read from one LLM request."""

    name: str  # endpoint table row, e.g. "chat.completions"
    scope: str
    model: str
    input_tokens: int
    output_tokens: int
    stream: bool
    strip_usage: bool = False
    upstream_body: bytes | None = None


def llm_endpoint(request: LlmRequest, table: PriceTable = PRICES) -> Endpoint:
    """The Endpoint of an LLM request: scope, the hold, and `model` as an attribute (so key
    constraints on `model` make allowlists)."""
    price = model_price(request.model, table)
    estimate = TokenCounts(input=request.input_tokens, output=request.output_tokens)
    call = LlmCall(
        model=request.model,
        price=price,
        table_version=table.version,
        estimate=estimate,
        stream=request.stream,
        strip_usage=request.strip_usage,
    )
    return Endpoint(
        request.name,
        request.scope,
        Money(CURRENCY, hold_micros(price, estimate)),
        {"model": request.model},
        table.cost_source,
        upstream_body=request.upstream_body,
        llm=call,
    )


def with_tenant_price(endpoint: Endpoint, price: ModelPrice, source: str) -> Endpoint:
    """The LLM endpoint held and (later) charged at the tenant's own price (`source`:
    "tenant:<tenant_id>"); the output bound stays the model's, from the table."""
    call = endpoint.llm
    if call is None:
        return endpoint
    own = replace(price, max_output_tokens=call.price.max_output_tokens)
    hold = Money(CURRENCY, hold_micros(own, call.estimate))
    return replace(
        endpoint,
        estimate=hold,
        cost_source=source,
        llm=replace(call, price=own, price_source=source),
    )


@dataclass
class Reported:
    """Token counts a vendor reported so far (None: not reported)."""

    input: int | None = None
    output: int | None = None
    cached_input: int = 0
    cache_write_input: int = 0
    reasoning: int = 0
    vendor_request_id: str = ""
    final: bool = False  # the vendor's closing usage was seen


def priced(call: LlmCall, reported: Reported) -> Cost:
    """The charge for what was reported, the estimate standing in for any count that was not."""
    complete = reported.final and reported.input is not None and reported.output is not None
    tokens = TokenCounts(
        input=call.estimate.input if reported.input is None else reported.input,
        output=call.estimate.output if reported.output is None else reported.output,
        cached_input=reported.cached_input,
        cache_write_input=reported.cache_write_input,
    )
    usage = LlmUsage(call.model, tokens, reported.reasoning, call.table_version, complete)
    micros = tokens_cost_micros(call.price, tokens)
    source = call.price_source or f"prices:{call.table_version}"
    return Cost(Money(CURRENCY, micros), source, reported.vendor_request_id, usage)


def failed(endpoint: Endpoint) -> Cost:
    """LLM vendors bill no request they answered with an error: the hold is released."""
    return Cost(Money(CURRENCY, 0), "vendor_response")


def count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def sse_data(event: bytes) -> Any:
    """The JSON of an event's `data:` lines; None for comments, [DONE] or non-JSON data."""
    lines = [
        line[5:].removeprefix(b" ") for line in event.splitlines() if line.startswith(b"data:")
    ]
    if not lines:
        return None
    try:
        return json.loads(b"\n".join(lines))
    except (UnicodeDecodeError, ValueError):
        return None


class SseMeter:
    """Splits a streamed answer into whole events as it passes through (only an event split
    across network chunks waits for its end), hands each event's JSON to `observe`, which
    updates `reported` and says whether the agent gets the event (False: the gateway's own
    usage chunk the agent did not ask for)."""

    def __init__(
        self,
        endpoint: Endpoint,
        status: int,
        observe: Callable[[Any, Reported], bool],
    ) -> None:
        self._endpoint = endpoint
        self._status = status
        self._observe = observe
        self._pending = b""
        self.reported = Reported()

    def feed(self, chunk: bytes) -> bytes:
        self._pending += chunk
        kept = b"".join(self._events())
        if len(self._pending) > MAX_EVENT_BYTES:  # not SSE as documented: pass it on unread
            kept, self._pending = kept + self._pending, b""
        return kept

    def _events(self) -> Iterator[bytes]:
        while match := _EVENT_END.search(self._pending):
            event, self._pending = self._pending[: match.end()], self._pending[match.end() :]
            if self._status >= 300 or self._observe(sse_data(event), self.reported):
                yield event

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    def cost(self, complete: bool) -> Cost | None:
        call = self._endpoint.llm
        if self._status >= 300 or call is None:
            return failed(self._endpoint)
        return priced(call, self.reported)
