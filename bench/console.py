"""`python -m bench.console`: the console's keys page of a tenant with 10,000 keys (100 parents
with 99 children each), server time per page, measured in-process (issue #18: under 300 ms in
one round trip, paginated).

Stores from keyleash_ops.devstores (own Redis and PostgreSQL in a temporary dir), Vault and
Metering as their own processes (bench.system), the console in this process on 127.0.0.1:0,
fetched with aiohttp. The
server time is measured by a middleware around the handler (sign-in excluded); the round trip
seen by the client is printed beside it. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from bench.stats import percentile
from bench.system import start_system
from keyleash.client import VaultClient
from keyleash_console.app import create_app
from keyleash_console.settings import ConsoleSettings

TENANT = "bench-console"


async def mint_tree(vault: VaultClient, parents: int, children: int) -> None:
    gate = asyncio.Semaphore(32)

    async def mint(label: str, token: str | None = None) -> str:
        async with gate:
            minted = await vault.mint_key(
                tenant_id=TENANT,
                agent_id=f"agent-{label}",
                label=label,
                scopes=["stripe.charges.write"],
                request_id=str(uuid.uuid4()),
                token=token,
            )
            return minted.secret

    async def family(n: int) -> None:
        secret = await mint(f"parent-{n}")
        await asyncio.gather(*(mint(f"child-{n}-{c}", secret) for c in range(children)))

    await asyncio.gather(*(family(n) for n in range(parents)))


def timing(samples: list[float]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def measure(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            if request.path.endswith("/keys"):
                samples.append(time.perf_counter() - started)

    return measure


async def run(parents: int, children: int, pages: int, page_size: int) -> None:
    system = start_system(None, None)
    try:
        vault = system.start_service("vault", "vault_service", {})
        metering = system.start_service("metering", "metering_service", {})
        async with VaultClient(vault.address, token=system.admin_token) as client:
            started = time.perf_counter()
            await mint_tree(client, parents, children)
            print(
                f"minted {parents * (children + 1)} keys in {time.perf_counter() - started:.1f} s"
            )
        await measure_pages(system.admin_token, vault.port, metering.port, pages, page_size)
    finally:
        system.stop()


async def measure_pages(
    admin: str, vault_port: int, metering_port: int, pages: int, page_size: int
) -> None:
    settings = ConsoleSettings(
        listen="127.0.0.1:0",
        vault_target=f"127.0.0.1:{vault_port}",
        metering_target=f"127.0.0.1:{metering_port}",
        keys_page_size=page_size,
    )
    samples: list[float] = []
    app = create_app(settings)
    app.middlewares.insert(0, timing(samples))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    trips: list[float] = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(f"{url}/signin", data={"token": admin}) as answer:
                assert answer.status == 200
            link = f"/tenants/{TENANT}/keys"
            for _ in range(pages):
                started = time.perf_counter()
                async with http.get(f"{url}{link}") as answer:
                    page = await answer.text()
                trips.append(time.perf_counter() - started)
                assert answer.status == 200 and 0 < page.count("data-key-id=") <= page_size
                marker = 'id="next-page" href="'
                tail = page.split(marker, 1)[1].split('"', 1)[0] if marker in page else ""
                first = f"/tenants/{TENANT}/keys"
                link = first + tail.replace("&amp;", "&") if tail else first  # then start over
    finally:
        await runner.cleanup()
    print(f"keys page ({page_size} keys with usage bars), {pages} pages walked:")
    for name, values in (("server", samples), ("round trip", trips)):
        ms = sorted(v * 1000 for v in values)
        print(f"  {name}: p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console")
    parser.add_argument("--parents", type=int, default=100)
    parser.add_argument("--children", type=int, default=99)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(run(args.parents, args.children, args.pages, args.page_size))


if __name__ == "__main__":
    main()
