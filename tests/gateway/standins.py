"""Local stand-ins for the vendors' APIs, answering in their documented shapes.

Each records every request it receives (so tests can prove what reached the "vendor") and checks
the credential the gateway put in. The behaviour of one request is chosen by the request itself
(Stripe: `description=mode:...`), so concurrent tests never step on each other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    """A running stand-in: its URL, what it saw, the secret it accepts."""

    url: str
    accepted_secrets: set[str]
    seen: list[Seen] = field(default_factory=list)
    release_slow: asyncio.Event = field(default_factory=asyncio.Event)
    replies: dict[str, web.Response] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # Stripe PaymentIntents

    def seen_by(self, marker: str) -> list[Seen]:
        """Requests whose body contains `marker` (tests tag their requests with a run id)."""
        return [s for s in self.seen if marker.encode() in s.body]


def _stripe_error(status: int, kind: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message, **extra}}, status=status)


def stripe_app(state: StandIn) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in state.accepted_secrets:
            return _stripe_error(401, "invalid_request_error", "Invalid API Key provided")
        idempotency = request.headers.get("Idempotency-Key", "")
        if idempotency and idempotency in state.replies:
            cached = state.replies[idempotency]
            return web.Response(
                status=cached.status,
                body=cached.body,
                headers={"Idempotent-Replayed": "true", "Content-Type": "application/json"},
            )
        form = dict(parse_qsl(body.decode()))
        mode = form.get("description", "").partition("mode:")[2].split(" ")[0]
        if mode == "slow":
            await state.release_slow.wait()
            mode = ""
        if mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        reply = _intent_answer(request.method, request.path, form, state.intents)
        if reply is None:
            reply = _stripe_answer(request.method, request.path, form, mode)
        if idempotency and request.method == "POST" and reply.status < 500:
            state.replies[idempotency] = reply
        return reply

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _stripe_answer(method: str, path: str, form: dict[str, str], mode: str) -> web.Response:
    if mode == "declined":
        return _stripe_error(
            402,
            "card_error",
            "Your card was declined.",
            code="card_declined",
            decline_code="generic_decline",
            charge="ch_" + secrets.token_hex(8),
        )
    if mode == "invalid":
        return _stripe_error(400, "invalid_request_error", "Invalid source object", param="source")
    if mode == "500":
        return _stripe_error(500, "api_error", "Something went wrong on Stripe's end.")
    amount = int(form.get("amount", "2000") or 0)
    currency = form.get("currency", "usd")
    if method == "POST" and path == "/v1/charges":
        return web.json_response(
            {
                "id": "ch_" + secrets.token_hex(8),
                "object": "charge",
                "amount": amount,
                "amount_captured": amount,
                "currency": currency,
                "status": "succeeded",
                "paid": True,
                "captured": True,
                "customer": form.get("customer"),
                "description": form.get("description"),
            }
        )
    if method == "POST" and path == "/v1/refunds":
        return web.json_response(
            {
                "id": "re_" + secrets.token_hex(8),
                "object": "refund",
                "amount": amount,
                "currency": currency,
                "status": "succeeded",
                "charge": form.get("charge"),
            }
        )
    if method == "GET" and path.startswith("/v1/charges/"):
        return web.json_response(
            {
                "id": path.rsplit("/", 1)[1],
                "object": "charge",
                "amount": 2000,
                "currency": "usd",
                "status": "succeeded",
            }
        )
    return _stripe_error(
        404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})"
    )


def _intent_answer(
    method: str, path: str, form: dict[str, str], intents: dict[str, dict[str, Any]]
) -> web.Response | None:
    """PaymentIntents, kept between requests: create, retrieve, confirm (None: not one)."""
    parts = path.strip("/").split("/")
    if parts[:2] != ["v1", "payment_intents"] or "mode:" in form.get("description", ""):
        return None
    if method == "POST" and len(parts) == 2:
        confirmed = form.get("confirm") == "true"
        amount = int(form.get("amount", "2000") or 0)
        intent_id = "pi_" + secrets.token_hex(8)
        created: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount if confirmed else 0,
            "currency": form.get("currency", "usd"),
            "customer": form.get("customer"),
            "status": "succeeded" if confirmed else "requires_confirmation",
        }
        intents[intent_id] = created
        return web.json_response(created)
    intent = intents.get(parts[2]) if len(parts) >= 3 else None
    if intent is None:
        return _stripe_error(
            404,
            "invalid_request_error",
            f"No such payment_intent: '{parts[2] if len(parts) > 2 else ''}'",
            code="resource_missing",
            param="intent",
        )
    if method == "GET" and len(parts) == 3:
        return web.json_response(intent)
    if method == "POST" and parts[3:] == ["confirm"]:
        intent.update(status="succeeded", amount_received=intent["amount"])
        return web.json_response(intent)
    return None


def basic_password(header: str) -> str:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    return base64.b64decode(encoded).decode().partition(":")[2]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def resend_app(state: StandIn) -> web.Application:
    """api.resend.com: POST /emails and /emails/batch answer ids; a subject "reject" gets 422."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in state.accepted_secrets:
            return web.json_response(
                {"statusCode": 401, "name": "invalid_api_key", "message": "API key is invalid"},
                status=401,
            )
        payload = json.loads(body or b"null")
        emails = payload if isinstance(payload, list) else [payload]
        if any(e.get("subject") == "reject" for e in emails):
            return web.json_response(
                {"statusCode": 422, "name": "validation_error", "message": "Invalid `to` field."},
                status=422,
            )
        if request.path == "/emails/batch":
            return web.json_response({"data": [{"id": str(uuid.uuid4())} for _ in emails]})
        return web.json_response({"id": str(uuid.uuid4())})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def twilio_app(state: StandIn) -> web.Application:
    """api.twilio.com Messages: 201 with the message resource; Body "priced" reports a price
    at once (as Twilio does once it is known); To +15005550001 is invalid (error 21211)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        if basic_password(request.headers.get("Authorization", "")) not in state.accepted_secrets:
            return web.json_response(
                {
                    "code": 20003,
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
                status=401,
            )
        form = dict(parse_qsl(body.decode()))
        account = request.path.split("/")[3]
        if request.method == "GET":  # the message once final: Twilio now knows its price
            sid = request.path.rsplit("/", 1)[1].removesuffix(".json")
            return web.json_response(
                {
                    "sid": sid,
                    "account_sid": account,
                    "status": "delivered",
                    "price": "-0.01580",
                    "price_unit": "USD",
                }
            )
        if form.get("To") == "+15005550001":
            return web.json_response(
                {
                    "code": 21211,
                    "message": "The 'To' number +15005550001 is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                    "status": 400,
                },
                status=400,
            )
        priced = "priced" in form.get("Body", "")
        return web.json_response(
            {"sid": "SM" + secrets.token_hex(16), "account_sid": account, "to": form.get("To"), "from": form.get("From"), "body": form.get("Body"),
             "status": "queued", "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
             "price": "-0.00790" if priced else None, "price_unit": "USD", "error_code": None, "error_message": None,
             "date_created": "Tue, 01 Dec 2026 22:00:00 +0000", "uri": f"/2010-04-01/Accounts/{account}/Messages.json"},
            status=201,
        )  # fmt: skip

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
