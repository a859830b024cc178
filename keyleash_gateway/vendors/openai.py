"""OpenAI (api.openai.com, JSON). The SDK sends `Authorization: Bearer <api key>`; its base URL
becomes `http://gateway/openai/v1`.

Endpoint table (anything else is refused with 403; prices and method in vendors/llm.py):

- POST /v1/chat/completions: openai.chat.write; output bound `max_completion_tokens` (or the
  older `max_tokens`) x `n`, else the model's maximum. A streamed request that did not ask for
  `stream_options.include_usage` gets it added, and the extra usage chunk is removed from what
  the agent receives.
- POST /v1/responses: openai.responses.write; output bound `max_output_tokens`. Requests that
  pull input the body does not contain (`previous_response_id`, `conversation`, `prompt`) are
  refused (400): their input cannot be bounded before the call.
- POST /v1/embeddings: openai.embeddings.write; no output tokens.

Usage: `prompt_tokens` / `input_tokens` include the cached ones (`*_details.cached_tokens`, priced
at the cached price); output includes reasoning tokens (billed as output, recorded apart).
Errors (4xx, 5xx) cost nothing. Attribute for constraints: `model`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keyleash_core.llm_prices import ModelPrice
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

name = "openai"
default_base_url = "https://api.openai.com"

_UNBOUNDED_INPUT = ("previous_response_id", "conversation", "prompt")
_FINAL_RESPONSE_EVENTS = ("response.completed", "response.incomplete", "response.failed")


def vault_key(headers: Mapping[str, str]) -> str | None:
    return bearer(headers)


def upstream_auth(headers: Mapping[str, str], secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def describe(method: str, path: str, query: str, content_type: str, body: bytes) -> Endpoint:
    parts = path_segments(path)
    if method != "POST" or parts not in (
        ["v1", "chat", "completions"], ["v1", "responses"], ["v1", "embeddings"]
    ):  # fmt: skip
        raise UnknownEndpoint(f"{method} {path}")
    payload = json_body(body)
    if not isinstance(payload, dict):
        raise BadRequestBody("the body must be a JSON object")
    model = llm.requested_model(payload)
    price = llm.model_price(model)  # before reading the rest: an unknown model is refused
    inputs = llm.input_bound(body, payload)
    stream = payload.get("stream") is True
    if parts[1] == "embeddings":
        request = LlmRequest("embeddings", "openai.embeddings.write", model, inputs, 0, False)
    elif parts[1] == "responses":
        if any(payload.get(field) for field in _UNBOUNDED_INPUT):
            raise BadRequestBody(
                "previous_response_id, conversation and prompt are not accepted through the "
                "gateway: the input they add cannot be bounded before the call"
            )
        limit = llm.positive_int(payload, "max_output_tokens")
        outputs = llm.output_bound(price, limit)
        request = LlmRequest("responses", "openai.responses.write", model, inputs, outputs, stream)
    else:
        request = _chat(payload, model, inputs, price, stream)
    return llm.llm_endpoint(request)


def _chat(
    payload: dict[str, Any], model: str, inputs: int, price: ModelPrice, stream: bool
) -> LlmRequest:
    limit = llm.positive_int(payload, "max_completion_tokens")
    if limit is None:
        limit = llm.positive_int(payload, "max_tokens")
    choices = llm.positive_int(payload, "n") or 1
    outputs = llm.output_bound(price, limit, choices)
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequestBody("`stream_options` must be an object")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    if not stream or wants_usage:
        return LlmRequest("chat.completions", "openai.chat.write", model, inputs, outputs, stream)
    # The gateway needs the closing usage chunk; the agent did not ask for it (stripped again).
    payload["stream_options"] = {**(options or {}), "include_usage": True}
    upstream = json.dumps(payload, separators=(",", ":")).encode()
    return LlmRequest(
        "chat.completions", "openai.chat.write", model, inputs, outputs, True, True, upstream
    )


def _read_usage(usage: Any, reported: Reported) -> None:
    """Chat (`prompt_tokens`/`completion_tokens`) and Responses (`input_tokens`/`output_tokens`)
    usage objects, cached tokens split out of the input."""
    if not isinstance(usage, dict):
        return
    prompt = count(usage.get("prompt_tokens", usage.get("input_tokens")))
    output = count(usage.get("completion_tokens", usage.get("output_tokens", 0)))
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    cached = count(details.get("cached_tokens") if isinstance(details, dict) else 0) or 0
    if prompt is None or output is None:
        return
    reported.cached_input = min(cached, prompt)
    reported.input = prompt - reported.cached_input
    reported.output = output
    if isinstance(out_details, dict):
        reported.reasoning = count(out_details.get("reasoning_tokens")) or 0
    reported.final = True


def cost(endpoint: Endpoint, status: int, body: bytes) -> Cost | None:
    if status >= 300 or endpoint.llm is None:
        return llm.failed(endpoint)
    answer = json_object(body)
    reported = Reported(vendor_request_id=str(answer.get("id", "")))
    _read_usage(answer.get("usage"), reported)
    return llm.priced(endpoint.llm, reported)


def _observe_chat(strip_usage: bool) -> Any:
    def observe(data: Any, reported: Reported) -> bool:
        if not isinstance(data, dict):
            return True
        reported.vendor_request_id = reported.vendor_request_id or str(data.get("id", ""))
        if not isinstance(data.get("usage"), dict):
            return True
        _read_usage(data["usage"], reported)
        return not (strip_usage and not data.get("choices"))

    return observe


def _observe_responses(data: Any, reported: Reported) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
        return True
    response = data["response"]
    reported.vendor_request_id = reported.vendor_request_id or str(response.get("id", ""))
    if data.get("type") in _FINAL_RESPONSE_EVENTS:
        _read_usage(response.get("usage"), reported)
    return True


def stream_meter(endpoint: Endpoint, status: int) -> StreamMeter:
    strip = endpoint.llm is not None and endpoint.llm.strip_usage
    observe = _observe_responses if endpoint.name == "responses" else _observe_chat(strip)
    return llm.SseMeter(endpoint, status, observe)
