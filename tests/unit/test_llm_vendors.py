"""The gateway's LLM vendor modules, pure: the estimate (hold), pricing of reported usage, and
the SSE meters (usage read, the injected usage chunk removed, cut streams)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyleash_core.llm_prices import (
    ModelPrice,
    PriceTable,
    TokenCounts,
    load_price_table,
    tokens_cost_micros,
)
from keyleash_core.money import Money
from keyleash_core.reasons import DenyReason
from keyleash_gateway import answers
from keyleash_gateway.vendors import anthropic, llm, openai
from keyleash_gateway.vendors.base import (
    BadRequestBody,
    Cost,
    Endpoint,
    UnknownEndpoint,
    UnknownModel,
    pass_through_meter,
)

TABLE = load_price_table()
GPT4O = TABLE.models["gpt-4o"]
SONNET = TABLE.models["claude-sonnet-4"]


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _chat(**fields: Any) -> tuple[bytes, Endpoint]:
    fields = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]} | fields
    body = _body(**fields)
    return body, openai.describe("POST", "/v1/chat/completions", "", "application/json", body)


def _sse(payload: Any, event: str = "") -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (TokenCounts(), 0),
        (TokenCounts(input=1), 3),  # 2.5 micros rounded up
        (TokenCounts(input=2), 5),
        (TokenCounts(input=1000, output=100, cached_input=400), 2500 + 1000 + 500),
        (TokenCounts(cache_write_input=1), 3),
    ],
)
def test_tokens_are_priced_exactly_and_rounded_up_once(tokens: TokenCounts, expected: int) -> None:
    assert tokens_cost_micros(GPT4O, tokens) == expected


def test_every_model_of_the_table_has_a_documented_output_maximum_or_is_an_embedding() -> None:
    for name, price in TABLE.models.items():
        assert price.max_output_tokens > 0 or "embedding" in name
        assert price.cache_write_price >= price.input_per_million_micros


@pytest.mark.parametrize(
    ("model", "listed"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ],
)
def test_listed_models_and_their_dated_snapshots_are_priced(model: str, listed: str) -> None:
    assert llm.model_price(model) == TABLE.models[listed]


@pytest.mark.parametrize("model", ["gpt-5", "gpt-4o-mini-preview", "claude-sonnet-4-latest", ""])
def test_anything_else_is_an_unknown_model(model: str) -> None:
    with pytest.raises(UnknownModel):
        llm.model_price(model)


def test_a_model_is_never_priced_as_a_longer_named_neighbour() -> None:
    only_4o = PriceTable("t", "", {"gpt-4o": GPT4O})
    with pytest.raises(UnknownModel):
        llm.model_price("gpt-4o-mini", only_4o)


def test_the_hold_is_body_bytes_as_input_plus_the_requested_output() -> None:
    body, endpoint = _chat(max_completion_tokens=500)
    assert endpoint.llm is not None
    assert endpoint.llm.estimate == TokenCounts(input=len(body), output=500)
    expected = -(-(len(body) * 2_500_000 + 500 * 10_000_000) // 1_000_000)
    assert endpoint.estimate is not None and endpoint.estimate.micros == expected
    assert endpoint.scope == "openai.chat.write" and endpoint.attributes == {"model": "gpt-4o"}


@pytest.mark.parametrize(
    ("fields", "output"),
    [
        ({}, GPT4O.max_output_tokens),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 70, "max_tokens": 100}, 70),
        ({"max_tokens": 100, "n": 3}, 300),
    ],
)
def test_output_bound_of_chat_completions(fields: dict[str, Any], output: int) -> None:
    _body_bytes, endpoint = _chat(**fields)
    assert endpoint.llm is not None and endpoint.llm.estimate.output == output


@pytest.mark.parametrize("bad", [0, -1, "100", 1.5, True])
def test_a_malformed_output_limit_is_a_bad_request(bad: Any) -> None:
    with pytest.raises(BadRequestBody):
        _chat(max_tokens=bad)


def test_an_image_by_url_adds_the_per_image_bound() -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    body, endpoint = _chat(messages=[{"role": "user", "content": content}], max_tokens=1)
    assert endpoint.llm is not None
    assert endpoint.llm.estimate.input == len(body) + llm.IMAGE_TOKENS_BOUND


def test_a_stream_without_include_usage_gets_it_and_marks_the_chunk_for_removal() -> None:
    _body_bytes, endpoint = _chat(stream=True, stream_options={"include_obfuscation": False})
    assert endpoint.llm is not None and endpoint.llm.strip_usage
    assert endpoint.upstream_body is not None
    sent = json.loads(endpoint.upstream_body)
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    _body_bytes, asked = _chat(stream=True, stream_options={"include_usage": True})
    assert asked.upstream_body is None and asked.llm is not None and not asked.llm.strip_usage


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/responses", _body(model="gpt-4o", input="x", previous_response_id="resp_1")),
        ("/v1/chat/completions", b"[1, 2]"),
        ("/v1/chat/completions", _body(messages=[])),
    ],
)
def test_requests_the_estimate_cannot_bound_are_bad_requests(path: str, body: bytes) -> None:
    with pytest.raises(BadRequestBody):
        openai.describe("POST", path, "", "application/json", body)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/models"), ("POST", "/v1/images/generations")]
)
def test_endpoints_outside_the_table_are_refused(method: str, path: str) -> None:
    with pytest.raises(UnknownEndpoint):
        openai.describe(method, path, "", "", b"{}")


def test_embeddings_hold_no_output() -> None:
    body = _body(model="text-embedding-3-small", input="hello")
    endpoint = openai.describe("POST", "/v1/embeddings", "", "", body)
    assert endpoint.llm is not None and endpoint.llm.estimate.output == 0


def test_openai_usage_splits_cached_tokens_out_of_the_prompt() -> None:
    _body_bytes, endpoint = _chat(max_tokens=10)
    usage = {
        "prompt_tokens": 1000, "completion_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 20},
    }  # fmt: skip
    cost = openai.cost(endpoint, 200, json.dumps({"id": "chatcmpl-1", "usage": usage}).encode())
    assert cost is not None and cost.usage is not None
    assert cost.usage.tokens == TokenCounts(input=400, output=50, cached_input=600)
    assert cost.usage.reasoning_tokens == 20 and cost.usage.reported
    assert cost.amount.micros == -(-(400 * 2_500_000 + 50 * 10_000_000 + 600 * 1_250_000) // 10**6)
    assert cost.vendor_request_id == "chatcmpl-1" and cost.source == f"prices:{TABLE.version}"


def test_an_answer_without_usage_is_charged_the_estimate_and_an_error_nothing() -> None:
    _body_bytes, endpoint = _chat(max_tokens=10)
    cost = openai.cost(endpoint, 200, b'{"id": "x"}')
    assert cost is not None and cost.usage is not None and not cost.usage.reported
    assert cost.amount == endpoint.estimate
    for status in (400, 429, 500):
        failed = openai.cost(endpoint, status, b'{"error": {}}')
        assert failed is not None and failed.amount.micros == 0


def test_the_chat_meter_removes_the_injected_usage_chunk_and_reads_it() -> None:
    _body_bytes, endpoint = _chat(stream=True, max_tokens=10)
    meter = openai.stream_meter(endpoint, 200)
    content = _sse({"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi"}}]})
    usage = _sse({"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
    done = b"data: [DONE]\n\n"
    stream = content + usage + done
    passed = b"".join(meter.feed(stream[i : i + 5]) for i in range(0, len(stream), 5))
    assert passed + meter.flush() == content + done
    cost = meter.cost(True)
    assert cost is not None and cost.usage is not None and cost.usage.reported
    assert cost.usage.tokens == TokenCounts(input=7, output=2) and cost.vendor_request_id == "c1"


def test_a_cut_stream_without_usage_is_charged_the_estimate() -> None:
    _body_bytes, endpoint = _chat(stream=True, max_tokens=10)
    meter = openai.stream_meter(endpoint, 200)
    meter.feed(_sse({"id": "c1", "choices": [{"index": 0, "delta": {"content": "h"}}]}))
    cost = meter.cost(False)
    assert cost is not None and cost.amount == endpoint.estimate
    assert cost.usage is not None and not cost.usage.reported


def _message(**fields: Any) -> tuple[bytes, Endpoint]:
    fields = {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "hi"}]} | fields
    body = _body(**fields)
    return body, anthropic.describe("POST", "/v1/messages", "", "application/json", body)


def test_anthropic_without_max_tokens_holds_the_models_maximum() -> None:
    body, endpoint = _message()
    assert endpoint.llm is not None
    assert endpoint.llm.estimate == TokenCounts(input=len(body), output=SONNET.max_output_tokens)
    # The input bound is priced at the cache-write price (dearer than input for Anthropic).
    held = -(-(len(body) * 3_750_000 + SONNET.max_output_tokens * 15_000_000) // 10**6)
    assert endpoint.estimate is not None and endpoint.estimate.micros == held


def test_anthropic_vault_key_from_x_api_key_or_bearer() -> None:
    assert anthropic.vault_key({"x-api-key": "vk_1"}) == "vk_1"
    assert anthropic.vault_key({"Authorization": "Bearer vk_2"}) == "vk_2"
    assert anthropic.vault_key({}) is None
    assert anthropic.upstream_auth({}, "sk-ant") == {"x-api-key": "sk-ant"}


def test_anthropic_stream_usage_from_message_start_and_message_delta() -> None:
    _body_bytes, endpoint = _message(max_tokens=100, stream=True)
    meter = anthropic.stream_meter(endpoint, 200)
    usage = {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 4,
             "cache_creation_input_tokens": 2}  # fmt: skip
    start = _sse({"type": "message_start", "message": {"id": "msg_1", "usage": usage}},
                 "message_start")  # fmt: skip
    assert meter.feed(start) == start
    cut = meter.cost(False)
    assert cut is not None and cut.usage is not None and not cut.usage.reported
    assert cut.usage.tokens == TokenCounts(
        input=10, output=100, cached_input=4, cache_write_input=2
    )
    meter.feed(_sse({"type": "message_delta", "usage": {"output_tokens": 42}}, "message_delta"))
    whole = meter.cost(True)
    assert whole is not None and whole.usage is not None and whole.usage.reported
    assert whole.usage.tokens.output == 42 and whole.vendor_request_id == "msg_1"
    expected = -(-(10 * 3_000_000 + 42 * 15_000_000 + 4 * 300_000 + 2 * 3_750_000) // 10**6)
    assert whole.amount.micros == expected


def test_a_price_without_a_cache_write_price_uses_the_input_price() -> None:
    price = ModelPrice("m", 1_000_000, 2_000_000, 500_000, "v")
    assert tokens_cost_micros(price, TokenCounts(cache_write_input=3)) == 3


def test_model_unknown_is_a_403_denial() -> None:
    reply = answers.denied(DenyReason.MODEL_UNKNOWN, "no price")
    assert reply.status == 403
    assert json.loads(reply.body)["error"]["code"] == "MODEL_UNKNOWN"


def test_streams_of_vendors_without_a_stream_meter_pass_through_and_cost_the_estimate() -> None:
    estimate = Money("USD", 700)
    endpoint = Endpoint("x", "v.write", estimate)
    meter = pass_through_meter(endpoint, 200)
    assert meter.feed(b"data: 1\n") == b"data: 1\n" and meter.flush() == b""
    assert meter.cost(True) == Cost(estimate, "estimate")
    declined = pass_through_meter(endpoint, 402).cost(True)
    assert declined is not None and declined.amount == Money("USD", 0)
    assert pass_through_meter(endpoint, 503).cost(False) is None  # outcome unknown: hold kept


def test_an_endless_event_is_passed_on_unread_so_memory_stays_bounded() -> None:
    _body_bytes, endpoint = _chat(stream=True, max_tokens=10)
    meter = openai.stream_meter(endpoint, 200)
    blob = b"data: " + b"x" * llm.MAX_EVENT_BYTES
    assert meter.feed(blob[:10]) == b""
    assert meter.feed(blob[10:]) == blob and meter.flush() == b""
