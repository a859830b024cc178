"""Gateway edges: bad input, limits, fail closed, headers, and no secret anywhere."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis
import stripe

from keyleash.client import ConnectionsClient, VaultClient
from keyleash_gateway.app import create_app
from keyleash_gateway.settings import GatewaySettings
from tests.conftest import SERVICE_TOKEN
from tests.gateway.conftest import Gateway, SealedSystem
from tests.gateway.standins import StandIn, serve
from tests.gateway.stripe_helpers import charge, stripe_tenant


async def _post(
    url: str, body: bytes = b"amount=100&currency=usd", **headers: str
) -> tuple[int, dict[str, str], dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.json(content_type=None)


async def test_requests_without_a_key_or_to_unknown_vendors_are_refused(gateway: Gateway) -> None:
    status, _, body = await _post(f"{gateway.url}/stripe/v1/charges")
    assert status == 401 and body["error"] == {
        "type": "keyleash_denied",
        "code": "KEY_UNKNOWN",
        "message": body["error"]["message"],
    }
    status, _, body = await _post(
        f"{gateway.url}/stripe/v1/charges", Authorization="Bearer vk_not_a_key"
    )
    assert status == 401 and body["error"]["code"] == "KEY_UNKNOWN"
    status, _, body = await _post(f"{gateway.url}/paypal/v1/payments", Authorization="Bearer vk_x")
    assert status == 404 and body["error"]["code"] == "UNKNOWN_VENDOR"


async def test_bad_bodies_get_400_and_big_ones_413(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    auth = {"Authorization": f"Bearer {t.key}", "Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = await _post(
        f"{gateway.url}/stripe/v1/charges", b"currency=usd&description=" + t.run_id.encode(), **auth
    )
    assert status == 400 and body["error"]["code"] == "INVALID_REQUEST"
    status, _, body = await _post(
        f"{gateway.url}/stripe/v1/charges",
        b"amount=1&currency=usd&d=" + b"x" * 70_000 + t.run_id.encode(),
        **auth,
    )
    assert status == 413 and body["error"]["code"] == "BODY_TOO_LARGE"
    assert stripe_upstream.seen_by(t.run_id) == []


async def test_keyleash_unreachable_means_503_and_nothing_forwarded(
    sealed_system: SealedSystem,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    settings = GatewaySettings(
        listen="127.0.0.1:0",
        vault_target="127.0.0.1:9",
        metering_target="127.0.0.1:9",
        service_token=SERVICE_TOKEN,
        keyleash_timeout_seconds=1.0,
    )
    runner, url = await serve(create_app(settings))
    try:
        with pytest.raises(stripe.APIError) as unavailable:
            await charge(t, url, 100)
    finally:
        await runner.cleanup()
    assert unavailable.value.http_status == 503
    assert stripe_upstream.seen_by(t.run_id) == []


async def test_hop_by_hop_headers_and_the_vault_key_stay_behind(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    tenant: str,
) -> None:
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    status, response_headers, _ = await _post(
        f"{gateway.url}/stripe/v1/charges",
        f"amount=100&currency=usd&description={t.run_id}".encode(),
        **{
            "Authorization": f"Bearer {t.key}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "1",
            "Proxy-Authorization": "Basic eA==",
            "TE": "trailers",
            "Cookie": "session=1",
            "X-Keyleash-Run-Id": t.run_id,
            "Stripe-Version": "2024-06-20",
            "Idempotency-Key": "hop-" + t.run_id,
        },
    )
    assert status == 200
    [seen] = stripe_upstream.seen_by(t.run_id)
    lower = {k.lower() for k in seen.headers}
    assert {"x-drop-me", "proxy-authorization", "te", "cookie", "x-keyleash-run-id"}.isdisjoint(
        lower
    )
    assert (
        seen.headers["Stripe-Version"] == "2024-06-20"
        and seen.headers["Idempotency-Key"] == "hop-" + t.run_id
    )
    assert seen.headers["Authorization"] == f"Bearer {t.upstream_secret}"
    assert "Transfer-Encoding" not in response_headers


async def _redis_dump(client: aioredis.Redis, tenant: str) -> str:
    out = []
    async for key in client.scan_iter(match=f"*{tenant}*", count=1000):
        kind = _text(await client.type(key))
        reader = {
            "string": client.get,
            "hash": client.hgetall,
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            "stream": lambda k: client.xrange(k),
            "list": lambda k: client.lrange(k, 0, -1),
            "set": client.smembers,
        }[kind]
        out.append(f"{key!r} {await reader(key)!r}")
    return "\n".join(out)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_no_secret_in_logs_stores_or_answers(
    gateway: Gateway,
    stripe_upstream: StandIn,
    admin_connections: ConnectionsClient,
    admin_vault: VaultClient,
    sealed_system: SealedSystem,
    redis_client: aioredis.Redis,
    tenant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    t = await stripe_tenant(tenant, admin_connections, admin_vault, stripe_upstream)
    await charge(t, gateway.url, 100)
    for mode in ("declined", "500", "reset"):
        with pytest.raises(stripe.StripeError) as failed:
            await charge(t, gateway.url, 100, mode=mode)
        assert t.upstream_secret not in str(failed.value.json_body)
    await admin_vault.freeze_key(t.key_name, reason="test")
    with pytest.raises(stripe.AuthenticationError):
        await charge(t, gateway.url, 100)
    pg = await asyncpg.connect(sealed_system.env["KEYLEASH_DATABASE_URL"])
    try:
        rows = []
        for table in ("billing_events", "authorizations", "keys", "key_events", "connections"):
            rows += [
                r[0]
                for r in await pg.fetch(
                    f"SELECT row_to_json(t)::text FROM {table} t WHERE tenant_id = $1", tenant
                )
            ]
    finally:
        await pg.close()
    stores = "\n".join(rows) + await _redis_dump(redis_client, tenant)
    assert rows, "nothing was stored for the tenant"
    for secret in (t.upstream_secret, t.key):
        assert secret not in caplog.text
        assert secret not in stores
