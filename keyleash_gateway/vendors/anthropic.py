"""Anthropic (api.anthropic.com, JSON). The SDK sends the key in `x-api-key` (recent SDKs: as
`Authorization: Bearer`; both are read) and the API version in `anthropic-version` (kept as
sent); its base URL becomes `http://gateway/anthropic`. Upstream the connection's secret goes in
`x-api-key`.

Endpoint table (anything else is refused with 403; prices and method in vendors/llm.py):

- POST /v1/messages: anthropic.messages.write; output bound `max_tokens` (required by the API;
  when absent, the model's maximum from the table).
- POST /v1/messages/count_tokens: anthropic.messages.read; free.

Usage: `input_tokens` (uncached), `cache_read_input_tokens` (priced as cached input),
`cache_creation_input_tokens` (priced at the cache-write price), `output_tokens`. Streams report
it in `message_start` (input, cache, first output count) and `message_delta` (the final output
count, cumulative): a stream cut before `message_delta` is charged the reported input and the
estimate's output. Errors (4xx, 5xx, 529 overloaded) cost nothing. Attribute: `model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyleash_gateway.vendors import llm
from keyleash_gateway.vendors.base import (
    BadRequestBody,
    Cost,
    Endpoint,
    StreamMeter,
    UnknownEndpoint,
    bearer,
    json_body,
    json_object,
    path_segments,
)
from keyleash_gateway.vendors.llm import LlmRequest, Reported, count

name = "anthropic"
default_base_url = "https://api.anthropic.com"


def vault_key(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-api-key", "").strip() or bearer(headers)


def upstream_auth(headers: Mapping[str, str], secret: str) -> dict[str, str]:
    return {"x-api-key": secret}


def describe(method: str, path: str, query: str, content_type: str, body: bytes) -> Endpoint:
    parts = path_segments(path)
    if method == "POST" and parts == ["v1", "messages", "count_tokens"]:
        return Endpoint("messages.count_tokens", "anthropic.messages.read", None)
    if method != "POST" or parts != ["v1", "messages"]:
        raise UnknownEndpoint(f"{method} {path}")
    payload = json_body(body)
    if not isinstance(payload, dict):
        raise BadRequestBody("the body must be a JSON object")
    model = llm.requested_model(payload)
    price = llm.model_price(model)
    outputs = llm.output_bound(price, llm.positive_int(payload, "max_tokens"))
    stream = payload.get("stream") is True
    inputs = llm.input_bound(body, payload)
    request = LlmRequest("messages", "anthropic.messages.write", model, inputs, outputs, stream)
    return llm.llm_endpoint(request)


def _read_usage(usage: Any, reported: Reported) -> None:
    if not isinstance(usage, dict):
        return
    for field, attribute in (("input_tokens", "input"), ("output_tokens", "output")):
        value = count(usage.get(field))
        if value is not None:
            setattr(reported, attribute, value)
    reported.cached_input = count(usage.get("cache_read_input_tokens")) or reported.cached_input
    written = count(usage.get("cache_creation_input_tokens"))
    reported.cache_write_input = written or reported.cache_write_input


def cost(endpoint: Endpoint, status: int, body: bytes) -> Cost | None:
    if endpoint.llm is None or status >= 300:
        return llm.failed(endpoint)
    answer = json_object(body)
    reported = Reported(vendor_request_id=str(answer.get("id", "")))
    _read_usage(answer.get("usage"), reported)
    reported.final = True
    return llm.priced(endpoint.llm, reported)


def _observe(data: Any, reported: Reported) -> bool:
    if not isinstance(data, dict):
        return True
    if data.get("type") == "message_start" and isinstance(data.get("message"), dict):
        message = data["message"]
        reported.vendor_request_id = str(message.get("id", ""))
        _read_usage(message.get("usage"), reported)
        reported.output = None  # the first count only; message_delta reports the total
    elif data.get("type") == "message_delta":
        _read_usage(data.get("usage"), reported)
        reported.final = reported.output is not None
    return True


def stream_meter(endpoint: Endpoint, status: int) -> StreamMeter:
    return llm.SseMeter(endpoint, status, _observe)
