"""Composition root of the gateway: the Keyleash port, the upstream client, the use case, the
routes. `create_app(settings)` returns an aiohttp application (tests serve it on port 0)."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from aiohttp import web

from keyleash_core.http_serving import read_body_within
from keyleash_gateway import answers
from keyleash_gateway.answers import Reply
from keyleash_gateway.callbacks import TwilioStatusCallbacks
from keyleash_gateway.keyleash import Keyleash
from keyleash_gateway.proxy import ProxyCall, VendorRequest
from keyleash_gateway.settings import GatewaySettings
from keyleash_gateway.streaming import ClientGone
from keyleash_gateway.upstream import UpstreamClient
from keyleash_gateway.vendors.twilio_status import CALLBACK_PATH
from keyleash_gateway.x402_route import X402Call

log = logging.getLogger("keyleash.gateway")

PROXY: web.AppKey[ProxyCall] = web.AppKey("proxy", ProxyCall)
SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("settings", GatewaySettings)
CALLBACKS: web.AppKey[TwilioStatusCallbacks] = web.AppKey("callbacks", TwilioStatusCallbacks)
X402: web.AppKey[X402Call] = web.AppKey("x402", X402Call)
_BAGGAGE_RUN = re.compile(r"(?:^|,)\s*agent_run_id\s*=\s*([^,;]+)")


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(handler_args={"max_field_size": 16384})
    app[SETTINGS] = settings
    keyleash = Keyleash(settings)
    upstream = UpstreamClient(
        read_timeout=settings.upstream_timeout_seconds,
        max_response_bytes=settings.max_response_bytes,
    )
    app[PROXY] = ProxyCall(keyleash, upstream, settings.public_url)
    app[CALLBACKS] = TwilioStatusCallbacks(keyleash, upstream, settings.public_url)
    app[X402] = X402Call(keyleash, upstream)

    async def close(_app: web.Application) -> None:
        await app[PROXY].drain()
        await upstream.close()
        await keyleash.close()

    keyleash.start()  # inside the loop: charges an earlier process left are sent again
    app.on_cleanup.append(close)
    app.router.add_get("/healthz", healthz)
    app.router.add_post(CALLBACK_PATH, twilio_status)  # before the catch-all route
    app.router.add_route("*", "/{vendor}/{tail:.*}", proxy)
    return app


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def proxy(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    body = await read_body_within(request, settings.max_body_bytes)
    if body is None:
        return _respond(answers.too_large(settings.max_body_bytes))
    tail = request.match_info["tail"]
    call = VendorRequest(
        vendor=request.match_info["vendor"],
        method=request.method.upper(),
        path="/" + tail,
        query=request.rel_url.raw_query_string,
        headers=list(request.headers.items()),
        header_map=request.headers,
        body=body,
        agent_run_id=_run_id(request),
    )
    sink = StreamSink(request)
    reply: Reply | None
    try:
        if call.vendor == "x402":  # paid resources: x402_route.py
            reply = await request.app[X402].handle(call)
        else:
            reply = await request.app[PROXY].handle(call, sink)
    except Exception:
        log.exception("gateway error on %s %s", call.method, call.vendor)
        if sink.response is not None:  # the stream had started: it can only be cut short
            return sink.response
        reply = answers.unavailable("internal gateway error; nothing was charged")
    if reply is None and sink.response is not None:
        return sink.response
    return _respond(reply or answers.unavailable("internal gateway error"))


class StreamSink:
    """A streamed answer written to the agent as it comes (aiohttp StreamResponse)."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.response: web.StreamResponse | None = None

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        response = web.StreamResponse(status=status)
        for name, value in headers:
            response.headers.add(name, value)
        self.response = response
        try:
            await response.prepare(self._request)
        except ConnectionError:
            raise ClientGone() from None

    async def write(self, data: bytes) -> None:
        assert self.response is not None
        try:
            await self.response.write(data)
        except ConnectionError:
            raise ClientGone() from None

    def abort(self) -> None:
        if self._request.transport is not None:
            self._request.transport.abort()

    async def finish(self) -> None:
        assert self.response is not None
        try:
            await self.response.write_eof()
        except ConnectionError:
            raise ClientGone() from None


async def twilio_status(request: web.Request) -> web.Response:
    """Twilio's signed status callback for a message the gateway forwarded."""
    if (request.content_length or 0) > request.app[SETTINGS].max_body_bytes:
        return _respond(answers.too_large(request.app[SETTINGS].max_body_bytes))
    form = {name: str(value) for name, value in (await request.post()).items()}
    try:
        reply = await request.app[CALLBACKS].handle(
            request.rel_url.raw_path_qs,
            request.rel_url.raw_query_string,
            request.headers.get("X-Twilio-Signature", ""),
            form,
        )
    except Exception:
        log.exception("gateway error on a twilio status callback")
        reply = answers.unavailable("internal gateway error")
    return _respond(reply)


def _run_id(request: web.Request) -> str:
    """X-Keyleash-Run-Id, else `agent_run_id` in W3C baggage."""
    explicit = request.headers.get("X-Keyleash-Run-Id", "").strip()
    if explicit:
        return explicit[:256]
    match = _BAGGAGE_RUN.search(request.headers.get("baggage", ""))
    return unquote(match.group(1).strip())[:256] if match else ""


def _respond(reply: Reply) -> web.Response:
    response = web.Response(status=reply.status, body=reply.body)
    for name, value in reply.headers:
        response.headers.add(name, value)
    return response
