"""`python -m bench.gateway`: the egress gateway against the same local upstream called directly
and through a bare aiohttp pass-through proxy, measured in one run (ratios, never asserted).

Processes: `keyleash up` (Vault + Metering in one process, with its own Redis/Postgres, in a
temporary state dir; `--services processes`: each its own process, as compose runs them), the
gateway (`python -m keyleash_gateway`), a Stripe-shaped upstream and the bare proxy (this
module's `upstream` / `bare` sub-commands), and the load generator (this process, one event
loop, aiohttp). Prints p50/p99 at one caller and throughput at 64 callers for each path.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import grpc
from aiohttp import web

from bench.processes import free_port, keyleash_services, process, profiled, wait_http
from bench.profile import render, summarize
from bench.stats import percentile
from bench.system import process_cpu_seconds
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_core.money import Money
from keyleash_gateway.keyleash import AuthorizeCall, ChargeCall, Keyleash
from keyleash_gateway.settings import GatewaySettings

BODY = b"amount=100&currency=usd&source=tok_visa"
CHARGE = (
    b'{"id": "ch_bench", "object": "charge", "amount": 100, "currency": "usd",'
    b' "status": "succeeded"}'
)


def serve_upstream(port: int) -> None:
    async def charge(_request: web.Request) -> web.Response:
        await _request.read()
        return web.Response(body=CHARGE, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", charge)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_bare_proxy(port: int, upstream: str) -> None:
    """The floor: aiohttp server + one ClientSession, headers and body passed through."""

    async def start(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession()

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    async def proxy(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        target = upstream + request.path_qs.removeprefix("/stripe")
        async with request.app["session"].request(
            request.method, target, headers=headers, data=body
        ) as answer:
            payload = await answer.read()
            return web.Response(status=answer.status, body=payload, content_type="application/json")

    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", proxy)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def provision(vault: str, admin: str, upstream: str) -> str:
    """A tenant, a Stripe connection to the local upstream, an uncapped key; its secret."""
    metadata = (("authorization", f"Bearer {admin}"),)
    tenant = "bench-" + secrets.token_hex(4)
    with grpc.insecure_channel(vault) as channel:
        stub = vault_pb2_grpc.VaultServiceStub(channel)
        stub.CreateConnection(
            vault_pb2.CreateConnectionRequest(
                tenant_id=tenant,
                connection=vault_pb2.Connection(vendor="stripe", base_url=upstream),
                secret="sk_test_bench",
            ),
            metadata=metadata,
        )
        minted = stub.MintKey(
            vault_pb2.MintKeyRequest(
                tenant_id=tenant, agent_id="bench", scopes=["stripe.charges.write"]
            ),
            metadata=metadata,
        )
    return str(minted.secret)


async def latencies(url: str, key: str, count: int) -> list[float]:
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    samples = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.post(url, data=BODY, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def throughput(url: str, key: str, callers: int, seconds: float) -> tuple[float, int]:
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=callers)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    if response.status != 200:  # a refusal is not throughput
                        raise SystemExit(f"bench: {url} answered {response.status}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return done / (time.perf_counter() - started), done


def run(
    count: int,
    seconds: float,
    callers: int,
    profile: str | None = None,
    wait_for_metering: bool = False,
    services: str = "up",
) -> None:
    ports = {name: free_port() for name in ("upstream", "bare", "gateway")}
    upstream = f"http://127.0.0.1:{ports['upstream']}"
    service_token = "kl_service_" + secrets.token_hex(16)
    state = Path(tempfile.mkdtemp(prefix="keyleash-bench-gw-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")}
    env |= {
        "KEYLEASH_SERVICE_TOKEN": service_token,
        "KEYLEASH_SERVICE_TOKEN_SHA256": hashlib.sha256(service_token.encode()).hexdigest(),
    }
    me = [sys.executable, "-m", "bench.gateway"]
    with (
        process(*me, "upstream", str(ports["upstream"])),
        process(*me, "bare", str(ports["bare"]), upstream) as bare,
        keyleash_services(services, env, state) as (banner, keyleash_pids),
    ):
        gateway_env = env | {
            "KEYLEASH_VAULT_TARGET": banner["vault"],
            "KEYLEASH_METERING_TARGET": banner["metering"],
            "KEYLEASH_GATEWAY_LISTEN": f"127.0.0.1:{ports['gateway']}",
            "KEYLEASH_LOG_LEVEL": "WARNING",
        }
        if not wait_for_metering:  # as `keyleash up` and compose run it: charges via its disk
            gateway_env["KEYLEASH_GATEWAY_STATE_DIR"] = str(state / "bench-gateway")
        with process(sys.executable, "-m", "keyleash_gateway", env=gateway_env) as gateway:
            for port in ports.values():
                wait_http(f"http://127.0.0.1:{port}")
            key = provision(banner["vault"], banner["token"], upstream)
            # Whose CPU each path's throughput run spends: the proxying process, and Keyleash
            # (Vault + Metering, with their Redis and Postgres).
            pids = {
                "direct": [],
                "bare proxy": [bare.pid],
                "gateway": [gateway.pid, *keyleash_pids],
            }
            spied = {"gateway": gateway.pid, "keyleash": keyleash_pids[0]}.get(profile or "")
            profile_out = state / "profile.txt"
            measured = asyncio.run(
                measure(ports, key, count, seconds, callers, pids, (spied, profile_out))
            )
            report(*measured, callers)
            if spied is not None:
                with profile_out.open(encoding="utf-8") as lines:
                    print(f"\npy-spy of {profile} during the gateway's throughput run:")
                    print(render(*summarize(lines, top=40)))
            # Each Keyleash call alone, the charge as Metering records it (no outbox of its own).
            settings = replace(GatewaySettings.from_env(gateway_env), state_dir="")
            report_phases(asyncio.run(phases(settings, key, min(count, 300))))


async def measure(
    ports: dict[str, int],
    key: str,
    count: int,
    seconds: float,
    callers: int,
    pids: dict[str, list[int]],
    spy: tuple[int | None, Path] = (None, Path()),
) -> tuple[dict[str, tuple[float, float, float]], dict[str, list[float]]]:
    """(p50, p99, req/s) per path, and per path the CPU µs per request of each of its pids.
    `spy`: a pid to py-spy during the gateway's throughput run, and where its samples go."""
    paths = {
        "direct": f"http://127.0.0.1:{ports['upstream']}/v1/charges",
        "bare proxy": f"http://127.0.0.1:{ports['bare']}/stripe/v1/charges",
        "gateway": f"http://127.0.0.1:{ports['gateway']}/stripe/v1/charges",
    }
    results = {}
    cpu: dict[str, list[float]] = {}
    for name, url in paths.items():
        await latencies(url, key, 50)  # warm-up: connections, caches, JIT-free but page-warm
        samples = await latencies(url, key, count)
        before = [process_cpu_seconds(pid, tree=True) for pid in pids[name]]
        with profiled(spy[0] if name == "gateway" else None, seconds, spy[1]):
            rate, done = await throughput(url, key, callers, seconds)
        after = [process_cpu_seconds(pid, tree=True) for pid in pids[name]]
        cpu[name] = [(b - a) * 1e6 / max(done, 1) for a, b in zip(before, after, strict=True)]
        results[name] = (percentile(samples, 50), percentile(samples, 99), rate)
    return results, cpu


async def phases(settings: GatewaySettings, key: str, count: int) -> dict[str, list[float]]:
    """Where a gateway call's time goes: each Keyleash call it makes, alone, at one caller."""
    keyleash = Keyleash(settings)
    timings: dict[str, list[float]] = {"Authorize": [], "AccessConnectionSecret": [], "Charge": []}
    cost = Money("USD", 1_000_000)
    try:
        for _ in range(count):
            request_id = "gw-" + secrets.token_hex(8)
            call = AuthorizeCall(
                key, "stripe.charges.write", "stripe", "POST", "/v1/charges", cost, "bench", {},
                request_id,
            )  # fmt: skip
            charge = ChargeCall(
                request_id + "-charge", "", "", cost, "stripe", "POST /v1/charges", "bench",
                "ch_1", "vendor_response", "bench", {},
            )  # fmt: skip
            started = time.perf_counter()
            decision = await keyleash.authorize(call)
            timings["Authorize"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await keyleash.upstream(key, "stripe")
            timings["AccessConnectionSecret"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await keyleash.charge(
                replace(charge, key_id=decision.key_id, reservation_id=decision.reservation_id)
            )
            timings["Charge"].append((time.perf_counter() - started) * 1000)
    finally:
        await keyleash.close()
    return timings


def report_phases(timings: dict[str, list[float]]) -> None:
    print("\nwhere the time goes (each call alone, one caller):")
    for name, samples in timings.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        print(f"  {name:<24} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")


def report(
    results: dict[str, tuple[float, float, float]], cpu: dict[str, list[float]], callers: int
) -> None:
    direct_p50, direct_p99, _ = results["direct"]
    header = ("path", "p50 ms", "p99 ms", "added p50", "added p99", f"req/s @{callers}")
    print("{:<12} {:>8} {:>8} {:>10} {:>10} {:>12}".format(*header))
    for name, (p50, p99, rate) in results.items():
        added = (p50 - direct_p50, p99 - direct_p99)
        print(f"{name:<12} {p50:8.2f} {p99:8.2f} {added[0]:10.2f} {added[1]:10.2f} {rate:12.0f}")
    (bare_us,), (gateway_us, *keyleash) = cpu["bare proxy"], cpu["gateway"]
    keyleash_us = sum(keyleash)
    print(
        f"\nCPU per request at {callers} callers: bare proxy {bare_us:.0f} µs; gateway process"
        f" {gateway_us:.0f} µs + Keyleash (Vault, Metering, Redis, Postgres) {keyleash_us:.0f} µs"
    )
    ratio = results["gateway"][2] / results["bare proxy"][2]
    print(f"\ngateway / bare proxy throughput at {callers} callers: {ratio:.2f} (target >= 0.5)")
    p50, p99 = results["gateway"][0] - direct_p50, results["gateway"][1] - direct_p99
    print(f"gateway added at 1 caller: p50 {p50:.2f} ms (target <= 2), p99 {p99:.2f} ms (<= 5)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("upstream")
    up.add_argument("port", type=int)
    bare = sub.add_parser("bare")
    bare.add_argument("port", type=int)
    bare.add_argument("upstream")
    parser.add_argument("--count", type=int, default=1000, help="sequential calls per path")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run per path")
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument(
        "--profile",
        choices=["gateway", "keyleash"],
        help="py-spy this process tree during the gateway's throughput run (slows it)",
    )
    parser.add_argument(
        "--wait-for-metering",
        action="store_true",
        help="run the gateway without KEYLEASH_GATEWAY_STATE_DIR: each answer waits for"
        " Metering's commit of its charge instead of the gateway's own fsync",
    )
    parser.add_argument(
        "--services",
        choices=["up", "processes"],
        default="up",
        help="Vault and Metering in one process (`keyleash up`), or each its own process (as"
        " compose runs them)",
    )
    args = parser.parse_args(argv)
    if args.command == "upstream":
        serve_upstream(args.port)
    elif args.command == "bare":
        serve_bare_proxy(args.port, args.upstream)
    else:
        run(
            args.count, args.seconds, args.callers, args.profile, args.wait_for_metering,
            args.services,
        )  # fmt: skip


if __name__ == "__main__":
    main()
