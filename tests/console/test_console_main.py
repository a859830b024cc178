"""`python -m keyleash_console` and `keyleash console` as processes: they serve, an admin signs
in through them (so they reach the services), and a bad setting exits 2 in one line."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import aiohttp
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import ConsoleSystem


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until_serving(process: asyncio.subprocess.Process, url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{url}/healthz") as response:
                    assert response.status == 200
                    return
            except aiohttp.ClientConnectionError:
                assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                await asyncio.sleep(0.05)
    raise AssertionError("the console did not start")


@pytest.mark.parametrize(
    "command", [["-m", "keyleash_console"], ["-m", "keyleash_ops.cli", "console"]]
)
async def test_the_entry_points_serve_the_console(
    console_system: ConsoleSystem, command: list[str]
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEASH_")} | {
        "KEYLEASH_VAULT_TARGET": console_system.settings.vault_target,
        "KEYLEASH_METERING_TARGET": console_system.settings.metering_target,
        "KEYLEASH_CONSOLE_LISTEN": f"127.0.0.1:{port}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, env=env, stderr=asyncio.subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _until_serving(process, url)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.post(f"{url}/signin", data={"token": ADMIN_TOKEN}) as answer:
                assert answer.status == 200 and answer.url.path == "/"
    finally:
        process.terminate()
        _, stderr = await process.communicate()
    assert ADMIN_TOKEN.encode() not in stderr
    bad = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env=env | {"KEYLEASH_CONSOLE_SESSION_SECONDS": "0"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await bad.communicate()
    assert bad.returncode == 2 and b"KEYLEASH_CONSOLE_SESSION_SECONDS" in stderr
    assert stderr.count(b"\n") == 1
