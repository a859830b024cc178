"""Local stand-ins of api.openai.com and api.anthropic.com, in their documented shapes: chat
completions, responses, embeddings and messages as JSON and as server-sent events (OpenAI's
`data:` chunks ending in `[DONE]`, with the `choices: []` usage chunk when
`stream_options.include_usage` is set; Anthropic's named events message_start ...
message_delta (usage) ... message_stop), and their error bodies.

A request picks its behaviour with `mode:<name>` anywhere in its body (so concurrent tests never
step on each other): `mode:error` (a 400 in the vendor's error shape), `mode:cut` (the stream is
cut midway, before any usage), `mode:wait` (the stream pauses after its first content chunk
until the test opens `gate(marker)`), `mode:nousage` (a 200 answer without usage).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.gateway.standins import Seen, StandIn

# What the stand-ins report, so tests can price it by hand.
OPENAI_USAGE = {"prompt": 1200, "cached": 200, "completion": 300, "reasoning": 64}
ANTHROPIC_USAGE = {"input": 900, "cache_read": 150, "cache_write": 50, "output": 240}
WORDS = ["Hello", " from", " the", " stand", "-in", "."]
_MODE = re.compile(rb"mode:([a-z]+)")
_MARKER = re.compile(rb"marker:([0-9a-f]+)")


@dataclass
class LlmStandIn(StandIn):
    """A stand-in whose streams can be held at a gate the test opens."""

    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    finished: dict[str, asyncio.Event] = field(default_factory=dict)

    def gate(self, marker: str) -> asyncio.Event:
        return self.gates.setdefault(marker, asyncio.Event())

    def done(self, marker: str) -> asyncio.Event:
        """Set once the stand-in wrote the whole stream of the request tagged `marker`."""
        return self.finished.setdefault(marker, asyncio.Event())


def _mode(body: bytes) -> str:
    match = _MODE.search(body)
    return match.group(1).decode() if match else ""


def _marker(body: bytes) -> str:
    match = _MARKER.search(body)
    return match.group(1).decode() if match else ""


async def _record(state: LlmStandIn, request: web.Request, secret: str) -> bytes | None:
    body = await request.read()
    state.seen.append(Seen(request.method, request.path, dict(request.headers), body))
    return body if secret in state.accepted_secrets else None


async def _sse(
    request: web.Request,
    state: LlmStandIn,
    body: bytes,
    events: Callable[[], AsyncIterator[bytes]],
    headers: dict[str, str],
) -> web.StreamResponse:
    """Writes each event as its own chunk; `mode:cut` aborts after the third, `mode:wait` waits
    at the gate after the second (the first content chunk)."""
    mode, marker = _mode(body), _marker(body)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", **headers}
    )
    await response.prepare(request)
    sent = 0
    async for event in events():
        await response.write(event)
        sent += 1
        if mode == "cut" and sent == 3:
            assert request.transport is not None
            request.transport.abort()
            return response
        if mode == "wait" and sent == 2:
            await state.gate(marker).wait()
    await response.write_eof()
    state.done(marker).set()
    return response


def _data(payload: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def _openai_error(status: int, message: str, code: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None,
                   "code": code}},
        status=status,
        headers={"x-request-id": "req_" + secrets.token_hex(8)},
    )  # fmt: skip


def _chat_usage() -> dict[str, Any]:
    u = OPENAI_USAGE
    return {
        "prompt_tokens": u["prompt"],
        "completion_tokens": u["completion"],
        "total_tokens": u["prompt"] + u["completion"],
        "prompt_tokens_details": {"cached_tokens": u["cached"], "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u["reasoning"], "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }  # fmt: skip


def _responses_usage() -> dict[str, Any]:
    u = OPENAI_USAGE
    return {
        "input_tokens": u["prompt"],
        "input_tokens_details": {"cached_tokens": u["cached"]},
        "output_tokens": u["completion"],
        "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
        "total_tokens": u["prompt"] + u["completion"],
    }


def _chat_completion(payload: dict[str, Any], with_usage: bool) -> dict[str, Any]:
    return {
        "id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion",
        "created": 1764626400, "model": payload["model"], "system_fingerprint": "fp_standin",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": "".join(WORDS),
                                 "refusal": None, "annotations": []}}],
        "usage": _chat_usage() if with_usage else None,
    }  # fmt: skip


def _chat_chunks(payload: dict[str, Any]) -> Callable[[], AsyncIterator[bytes]]:
    include_usage = (payload.get("stream_options") or {}).get("include_usage") is True
    base = {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion.chunk",
            "created": 1764626400, "model": payload["model"], "system_fingerprint": "fp_standin"}  # fmt: skip
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data(base | {"choices": [choice]} | extra)

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for word in WORDS:
            yield chunk({"content": word})
        yield chunk({}, "stop")
        if include_usage:
            yield _data(base | {"choices": [], "usage": _chat_usage()})
        yield b"data: [DONE]\n\n"

    return events


def _response_object(payload: dict[str, Any], response_id: str, status: str) -> dict[str, Any]:
    done = status == "completed"
    text = "".join(WORDS)
    return {
        "id": response_id, "object": "response", "created_at": 1764626400, "status": status,
        "model": payload["model"], "error": None, "incomplete_details": None,
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"), "parallel_tool_calls": True,
        "previous_response_id": None, "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto",
        "tools": [], "text": {"format": {"type": "text"}}, "truncation": "disabled",
        "metadata": {},
        "output": [{"type": "message", "id": "msg_" + response_id[5:], "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}]
        if done else [],
        "usage": _responses_usage() if done else None,
    }  # fmt: skip


def _response_events(payload: dict[str, Any]) -> Callable[[], AsyncIterator[bytes]]:
    response_id = "resp_" + secrets.token_hex(12)

    async def events() -> AsyncIterator[bytes]:
        created = _response_object(payload, response_id, "in_progress")
        yield _data({"type": "response.created", "sequence_number": 0, "response": created},
                    "response.created")  # fmt: skip
        for n, word in enumerate(WORDS, start=1):
            yield _data(
                {"type": "response.output_text.delta", "sequence_number": n,
                 "item_id": "msg_" + response_id[5:], "output_index": 0, "content_index": 0,
                 "delta": word, "logprobs": []},
                "response.output_text.delta",
            )  # fmt: skip
        done = _response_object(payload, response_id, "completed")
        yield _data({"type": "response.completed", "sequence_number": len(WORDS) + 1,
                     "response": done}, "response.completed")  # fmt: skip

    return events


def _embeddings(payload: dict[str, Any]) -> dict[str, Any]:
    inputs = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
    vector = [0.25, -0.5, 0.125]
    packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    as_base64 = payload.get("encoding_format") == "base64"
    return {
        "object": "list", "model": payload["model"],
        "data": [{"object": "embedding", "index": i, "embedding": packed if as_base64 else vector}
                 for i in range(len(inputs))],
        "usage": {"prompt_tokens": OPENAI_USAGE["prompt"], "total_tokens": OPENAI_USAGE["prompt"]},
    }  # fmt: skip


def openai_app(state: LlmStandIn) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        secret = request.headers.get("Authorization", "").removeprefix("Bearer ")
        body = await _record(state, request, secret)
        if body is None:
            return _openai_error(401, "Incorrect API key provided.", "invalid_api_key")
        payload = json.loads(body)
        mode = _mode(body)
        if mode == "error":
            return _openai_error(400, "Invalid 'messages': too short.", "invalid_value")
        headers = {"x-request-id": "req_" + secrets.token_hex(8), "openai-processing-ms": "5"}
        if request.path == "/v1/embeddings":
            return web.json_response(_embeddings(payload), headers=headers)
        if request.path == "/v1/responses":
            if payload.get("stream"):
                return await _sse(request, state, body, _response_events(payload), headers)
            answer = _response_object(payload, "resp_" + secrets.token_hex(12), "completed")
            return web.json_response(answer, headers=headers)
        if payload.get("stream"):
            return await _sse(request, state, body, _chat_chunks(payload), headers)
        return web.json_response(_chat_completion(payload, mode != "nousage"), headers=headers)

    return _app(handle)


def _anthropic_error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": kind, "message": message}},
        status=status,
        headers={"request-id": "req_" + secrets.token_hex(8)},
    )


def _message(payload: dict[str, Any], message_id: str, streaming: bool) -> dict[str, Any]:
    u = ANTHROPIC_USAGE
    return {
        "id": message_id, "type": "message", "role": "assistant", "model": payload["model"],
        "content": [] if streaming else [{"type": "text", "text": "".join(WORDS)}],
        "stop_reason": None if streaming else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": u["input"], "cache_creation_input_tokens": u["cache_write"],
                  "cache_read_input_tokens": u["cache_read"],
                  "output_tokens": 1 if streaming else u["output"], "service_tier": "standard"},
    }  # fmt: skip


def _message_events(payload: dict[str, Any]) -> Callable[[], AsyncIterator[bytes]]:
    message_id = "msg_" + secrets.token_hex(12)

    async def events() -> AsyncIterator[bytes]:
        start = {"type": "message_start", "message": _message(payload, message_id, True)}
        yield _data(start, "message_start")
        block = {"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}}  # fmt: skip
        yield _data(block, "content_block_start")
        yield _data({"type": "ping"}, "ping")
        for word in WORDS:
            delta = {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": word}}  # fmt: skip
            yield _data(delta, "content_block_delta")
        yield _data({"type": "content_block_stop", "index": 0}, "content_block_stop")
        final = {"type": "message_delta",
                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": {"output_tokens": ANTHROPIC_USAGE["output"]}}  # fmt: skip
        yield _data(final, "message_delta")
        yield _data({"type": "message_stop"}, "message_stop")

    return events


def anthropic_app(state: LlmStandIn) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await _record(state, request, request.headers.get("x-api-key", ""))
        if body is None:
            return _anthropic_error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _anthropic_error(400, "invalid_request_error", "anthropic-version required")
        payload = json.loads(body)
        if _mode(body) == "error":
            return _anthropic_error(400, "invalid_request_error", "messages: at least one message is required")  # fmt: skip
        headers = {"request-id": "req_" + secrets.token_hex(8)}
        if request.path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": ANTHROPIC_USAGE["input"]}, headers=headers)
        message_id = "msg_" + secrets.token_hex(12)
        if payload.get("stream"):
            return await _sse(request, state, body, _message_events(payload), headers)
        return web.json_response(_message(payload, message_id, False), headers=headers)

    return _app(handle)


def _app(handle: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
