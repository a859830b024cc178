"""The demo's gateway step: an agent that holds only a vault key pays through the gateway.

No vendor can be reached from a demo machine, so the step starts a local stand-in of Stripe's
`POST /v1/charges` (answering in Stripe's shape, accepting only the connection's secret) and
creates a Stripe connection to it for a tenant of its own (the main story's tenant ends the demo
throttled). The agent's calls are plain HTTP, as any SDK would send them with its base URL set
to the gateway: the first is charged the vendor's amount, the one that would cross the key's cap
is refused before the vendor sees it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from keyleash.client import ConnectionsClient
from keyleash.client.errors import KeyleashError
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from keyleash_ops import cli_common as common

STEP_TITLE = "through the gateway: the agent holds only its vault key, Keyleash the Stripe secret"


@dataclass
class StandInStripe:
    """What the local Stripe stand-in saw: the bearer token of each request."""

    secret: str
    url: str = ""
    tokens: list[str] = field(default_factory=list)


def _stripe_app(state: StandInStripe) -> web.Application:
    async def charges(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        state.tokens.append(token)
        if token != state.secret:
            error = {"type": "invalid_request_error", "message": "Invalid API Key provided"}
            return web.json_response({"error": error}, status=401)
        form = dict(parse_qsl((await request.read()).decode()))
        return web.json_response(
            {
                "id": "ch_demo_" + secrets.token_hex(6),
                "object": "charge",
                "amount": int(form.get("amount", "0")),
                "currency": form.get("currency", "usd"),
                "status": "succeeded",
                "paid": True,
            }
        )

    app = web.Application()
    app.router.add_post("/v1/charges", charges)
    return app


@contextmanager
def stand_in_stripe() -> Iterator[StandInStripe]:
    """The stand-in on a free loopback port, served from its own thread for the block."""
    state = StandInStripe("sk_test_demo_" + secrets.token_hex(12))
    ready = threading.Event()
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        runner = web.AppRunner(_stripe_app(state), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        stop = asyncio.Event()
        running.append((asyncio.get_running_loop(), stop))
        ready.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield state
    finally:
        for loop, stop in running:
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def _post_charge(gateway_url: str, key: str, cents: int, run: str) -> tuple[int, dict[str, Any]]:
    """POST /stripe/v1/charges as the Stripe SDK sends it: the vault key as its API key."""
    body = urlencode({"amount": cents, "currency": "usd", "source": "tok_visa"}).encode()
    request = urllib.request.Request(
        f"{gateway_url}/stripe/v1/charges",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Keyleash-Run-Id": run,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def _create_connection(
    vault_target: str, client_kwargs: dict[str, Any], tenant: str, stand_in: StandInStripe
) -> V.Connection:
    async def create() -> V.Connection:
        async with ConnectionsClient(vault_target, **client_kwargs) as connections:
            return await connections.create_connection(
                tenant_id=tenant,
                connection=V.Connection(vendor="stripe", base_url=stand_in.url),
                secret=stand_in.secret,
            )

    return asyncio.run(create())


def _usd(text: str) -> money_pb2.Money:
    return common.parse_money(text + "USD")


def through_gateway(
    demo: Any,
    gateway_url: str,
    vault_target: str,
    client_kwargs: dict[str, Any],
    say: Callable[[str], None],
) -> None:
    """The step; says why and moves on when no gateway answers at `gateway_url`."""
    demo.header(STEP_TITLE)
    tenant, run = f"{demo.tenant}-gw", f"{demo.tenant}-run-gateway"
    with stand_in_stripe() as stand_in:
        try:
            connection = _create_connection(vault_target, client_kwargs, tenant, stand_in)
        except KeyleashError as error:
            say(f"    skipped: the vault keeps no vendor secrets here ({error.message})")
            return
        say(f"    a local Stripe stand-in at {stand_in.url} (nothing leaves this machine)")
        say(f"    connection {connection.name}: its secret is sealed in the vault")
        minted = demo.vault.mint_key(
            tenant_id=tenant,
            agent_id="shop-bot",
            label="demo gateway",
            scopes=["stripe.charges.write"],
            policy=V.Policy(
                spend_caps=[V.SpendCap(limit=_usd("1.00"), window=V.SpendCap.WINDOW_CALENDAR_DAY)]
            ),
            ttl=common.parse_duration("1h"),
        )
        say(f"    the agent gets {minted.secret[:10]}… and {gateway_url}/stripe, "
            "capped 1.00 USD a day")  # fmt: skip
        for cents in (60, 60):
            try:
                status, answer = _post_charge(gateway_url, minted.secret, cents, run)
            except (urllib.error.URLError, OSError) as error:
                say(f"    skipped: no gateway answers at {gateway_url} ({error}); "
                    "`keyleash up` serves one on :8080, or pass --gateway URL")  # fmt: skip
                return
            _report(demo, run, cents, status, answer, say)
        seen = len(stand_in.tokens)
        with_secret = all(token == stand_in.secret for token in stand_in.tokens)
        say(f"    Stripe saw {seen} request(s), each with the connection's secret: {with_secret}; "
            f"the vault key never: {minted.secret not in stand_in.tokens}")  # fmt: skip


def _report(
    demo: Any, run: str, cents: int, status: int, answer: dict[str, Any], say: Callable[[str], None]
) -> None:
    price = common.format_money(_usd(f"{cents // 100}.{cents % 100:02d}"))
    if status == 200:
        say(f"    POST /stripe/v1/charges {price}: 200 {answer.get('id')}, charged {price}")
        demo.calls.append({"step": demo.step, "key": "gateway", "agent_run_id": run,
                           "decision": "ALLOW", "http_status": 200})  # fmt: skip
        return
    error = answer.get("error", {}) if isinstance(answer.get("error"), dict) else {}
    code, message = error.get("code", "?"), error.get("message", "")
    say(f"    POST /stripe/v1/charges {price}: {status} {code}: {message}")
    demo.calls.append({"step": demo.step, "key": "gateway", "agent_run_id": run,
                       "decision": code, "http_status": status})  # fmt: skip
