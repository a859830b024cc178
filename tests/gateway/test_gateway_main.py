"""`python -m keyleash_gateway`, the container entry point, as a process."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import aiohttp

from tests.conftest import SERVICE_TOKEN
from tests.gateway.conftest import SealedSystem


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_entry_point_serves_and_a_bad_setting_exits_2(
    sealed_system: SealedSystem,
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")} | {
        "KEYLEASH_VAULT_TARGET": sealed_system.vault_address,
        "KEYLEASH_METERING_TARGET": sealed_system.metering_address,
        "KEYLEASH_SERVICE_TOKEN": SERVICE_TOKEN,
        "KEYLEASH_GATEWAY_LISTEN": f"127.0.0.1:{port}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keyleash_gateway", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the gateway did not start")
            async with session.post(
                f"http://127.0.0.1:{port}/stripe/v1/charges", data=b"amount=1&currency=usd"
            ) as refused:
                assert refused.status == 401
    finally:
        process.terminate()
        await process.communicate()
    bad = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "keyleash_gateway",
        env={k: v for k, v in env.items() if k != "KEYLEASH_SERVICE_TOKEN"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await bad.communicate()
    assert bad.returncode == 2 and b"KEYLEASH_SERVICE_TOKEN" in stderr and stderr.count(b"\n") == 1
