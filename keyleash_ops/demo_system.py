"""`keyleash demo --start`: a throwaway system in this process, for as long as the demo lasts:
Redis and PostgreSQL on free loopback ports (data in a temp dir, removed afterwards), Vault,
Metering and the gateway in an event loop of their own on a background thread."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyleash_gateway.embedded import prepare_env, start_gateway
from keyleash_ops.devstores import start_postgres, start_redis


class StartFailed(Exception):
    """The servers did not come up."""


@dataclass
class Started:
    vault: str
    metering: str
    gateway: str
    token: str


@contextlib.contextmanager
def started_system() -> Iterator[Started]:
    """Redis, PostgreSQL, Vault and Metering on free loopback ports, for as long as it lasts."""
    base = Path(tempfile.mkdtemp(prefix="keyleash-demo-", dir="/tmp"))
    base.chmod(0o755)
    token = "kl_admin_" + secrets.token_urlsafe(24)
    stores: list[Any] = []
    try:
        stores.append(start_redis(base / "redis", persistent=False))
        stores.append(start_postgres(base / "postgres", durable=False))
        env = {
            "KEYLEASH_REDIS_URL": stores[0].url,
            "KEYLEASH_DATABASE_URL": stores[1].url,
            "KEYLEASH_KEY_PEPPER": secrets.token_urlsafe(24),
            "KEYLEASH_ADMIN_TOKEN_SHA256": hashlib.sha256(token.encode()).hexdigest(),
            "KEYLEASH_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "KEYLEASH_GATEWAY_LISTEN": "127.0.0.1:0",
        }
        prepare_env(env, state_dir=None)  # the gateway's service token
        with _ServerThread(env) as ports:
            vault, metering, gateway = (f"127.0.0.1:{port}" for port in ports)
            yield Started(vault, metering, f"http://{gateway}", token)
    finally:
        for store in reversed(stores):
            store.stop()
        shutil.rmtree(base, ignore_errors=True)


class _ServerThread:
    """Both servers in their own event loop on a background thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.ready = threading.Event()
        self.ports: tuple[int, int, int] | None = None
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name="keyleash-demo", daemon=True)

    def __enter__(self) -> tuple[int, int, int]:
        self.thread.start()
        self.ready.wait(120)
        if self.ports is None:
            raise StartFailed(f"could not start the servers: {self.error or 'timed out'}")
        return self.ports

    def __exit__(self, *_: object) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the waiting thread
            self.error = error
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        from metering_service.server import create_server as create_metering
        from metering_service.settings import MeteringSettings
        from vault_service.server import create_server as create_vault
        from vault_service.settings import VaultSettings

        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        vault = await create_vault(VaultSettings.from_env(self.env), "127.0.0.1:0")
        metering = await create_metering(MeteringSettings.from_env(self.env), "127.0.0.1:0")
        gateway = await start_gateway(self.env, vault.port, metering.port)
        try:
            self.ports = (vault.port, metering.port, gateway.port)
            self.ready.set()
            await self.stop.wait()
        finally:
            await gateway.stop()
            await metering.stop(2)
            await vault.stop(2)
