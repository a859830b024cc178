"""`python -m bench.llm_stream`: time to first chunk of a streamed chat completion through the
gateway vs direct from the same local OpenAI-shaped upstream, in one run (reported, never
asserted; target: <= 2 ms added at p50).

Processes as in bench/gateway.py: `keyleash up` (Vault + Metering + its own stores), the gateway
(`python -m keyleash_gateway`), and this module's `upstream` sub-command: an SSE stream of
chat.completion.chunk events (the first at once, then one per millisecond, then the usage chunk
and [DONE]). The load generator reads each answer to its end (so the gateway charges each call)
but times only until the first `data:` chunk arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc
from aiohttp import web

from bench.processes import free_port, process, read_banner, wait_http
from bench.stats import percentile
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc
from keyleash_core.money import Money
from keyleash_gateway.keyleash import AuthorizeCall, Keyleash
from keyleash_gateway.settings import GatewaySettings

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Write one short sentence."}],
    "max_tokens": 64,
    "stream": True,
}
CHUNKS = 10
PAUSE = float(os.environ.get("BENCH_PAUSE", "0"))


def _chunk(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def serve_upstream(port: int) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        asked = json.loads(await request.read())
        usage = (asked.get("stream_options") or {}).get("include_usage") is True
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
        for n in range(CHUNKS):
            delta = {"index": 0, "delta": {"content": f"w{n} "}, "finish_reason": None}
            await response.write(_chunk(base | {"choices": [delta]}))
            await asyncio.sleep(0.001)
        if usage:
            counts = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 22}
            await response.write(_chunk(base | {"choices": [], "usage": counts}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stream)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def provision(vault: str, admin: str, upstream: str) -> str:
    """A tenant, an OpenAI connection to the local upstream, an uncapped key; its secret."""
    metadata = (("authorization", f"Bearer {admin}"),)
    tenant = "bench-llm-" + secrets.token_hex(4)
    with grpc.insecure_channel(vault) as channel:
        stub = vault_pb2_grpc.VaultServiceStub(channel)
        stub.CreateConnection(
            vault_pb2.CreateConnectionRequest(
                tenant_id=tenant,
                connection=vault_pb2.Connection(vendor="openai", base_url=upstream),
                secret="sk-bench",
            ),
            metadata=metadata,
        )
        minted = stub.MintKey(
            vault_pb2.MintKeyRequest(
                tenant_id=tenant, agent_id="bench", scopes=["openai.chat.write"]
            ),
            metadata=metadata,
        )
    return str(minted.secret)


async def first_chunk_times(url: str, key: str, count: int) -> list[float]:
    """Milliseconds from sending each request to its first `data:` chunk (read to the end)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = json.dumps(REQUEST).encode()
    samples = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            await asyncio.sleep(PAUSE)
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200, response.status
                seen = b""
                async for chunk in response.content.iter_any():
                    if not seen:
                        samples.append((time.perf_counter() - started) * 1000)
                    seen += chunk
                assert seen.startswith(b"data:") and seen.endswith(b"data: [DONE]\n\n"), seen
    return samples


async def measure(ports: dict[str, int], key: str, count: int) -> dict[str, list[float]]:
    paths = {
        "direct": f"http://127.0.0.1:{ports['upstream']}/v1/chat/completions",
        "gateway": f"http://127.0.0.1:{ports['gateway']}/openai/v1/chat/completions",
    }
    results = {}
    for name, url in paths.items():
        await first_chunk_times(url, key, 30)  # warm-up: connections, caches
        results[name] = await first_chunk_times(url, key, count)
    return results


async def decision_times(settings: GatewaySettings, key: str, count: int) -> list[float]:
    """What the gateway waits for before it forwards: Authorize and AccessConnectionSecret,
    concurrently, as proxy.py makes them (one caller)."""
    keyleash = Keyleash(settings)
    samples = []
    try:
        for _ in range(count):
            call = AuthorizeCall(
                key, "openai.chat.write", "openai", "POST", "/v1/chat/completions",
                Money("USD", 100), "bench", {"model": "gpt-4o-mini"}, "gw-" + secrets.token_hex(8),
            )  # fmt: skip
            started = time.perf_counter()
            await asyncio.gather(keyleash.authorize(call), keyleash.upstream(key, "openai"))
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        await keyleash.close()
    return samples


def report_decision(samples: list[float], added_p50: float) -> None:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    print(
        "\nwhere the time goes: Authorize + AccessConnectionSecret (concurrent)"
        f" p50 {p50:.2f} ms, p99 {p99:.2f} ms;"
    )
    rest = added_p50 - p50
    print(f"the rest of the added p50 (parse, estimate, forward, relay): {rest:.2f} ms")


def report(results: dict[str, list[float]]) -> float:
    direct = results["direct"]
    print("{:<10} {:>14} {:>14} {:>12}".format("path", "TTFC p50 ms", "TTFC p99 ms", "added p50"))
    for name, samples in results.items():
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        added = p50 - percentile(direct, 50)
        print(f"{name:<10} {p50:14.2f} {p99:14.2f} {added:12.2f}")
    added = percentile(results["gateway"], 50) - percentile(direct, 50)
    print(f"\ngateway added to time to first chunk: p50 {added:.2f} ms (target <= 2)")
    return added


def run(count: int) -> None:
    ports = {name: free_port() for name in ("upstream", "gateway")}
    upstream = f"http://127.0.0.1:{ports['upstream']}"
    service_token = "kl_service_" + secrets.token_hex(16)
    state = Path(tempfile.mkdtemp(prefix="keyleash-bench-llm-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")}
    env |= {
        "KEYLEASH_SERVICE_TOKEN": service_token,
        "KEYLEASH_SERVICE_TOKEN_SHA256": hashlib.sha256(service_token.encode()).hexdigest(),
    }
    with (
        process(sys.executable, "-m", "bench.llm_stream", "upstream", str(ports["upstream"])),
        process(sys.executable, "-m", "keyleash_ops.cli", "up", "--state-dir", str(state),
                "--vault-listen", "127.0.0.1:0", "--metering-listen", "127.0.0.1:0",
                "--gateway-listen", "127.0.0.1:0", env=env) as up,
    ):  # fmt: skip
        banner = read_banner(up)
        gateway_env = env | {
            "KEYLEASH_VAULT_TARGET": banner["vault"],
            "KEYLEASH_METERING_TARGET": banner["metering"],
            "KEYLEASH_GATEWAY_LISTEN": f"127.0.0.1:{ports['gateway']}",
            "KEYLEASH_LOG_LEVEL": "WARNING",
        }
        with process(sys.executable, "-m", "keyleash_gateway", env=gateway_env):
            for port in ports.values():
                wait_http(f"http://127.0.0.1:{port}")
            key = provision(banner["vault"], banner["token"], upstream)
            added = report(asyncio.run(measure(ports, key, count)))
            settings = GatewaySettings.from_env(gateway_env)
            report_decision(asyncio.run(decision_times(settings, key, min(count, 300))), added)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.llm_stream", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("upstream")
    up.add_argument("port", type=int)
    parser.add_argument("--count", type=int, default=500, help="sequential streams per path")
    args = parser.parse_args(argv)
    if args.command == "upstream":
        serve_upstream(args.port)
    else:
        run(args.count)


if __name__ == "__main__":
    main()
