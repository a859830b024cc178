"""Running the MCP server: over stdio for one agent, or streamable HTTP for many (uvicorn serving
the SDK's Starlette app, behind a check that each request carries a Bearer vault key)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn

from keyleash.client import MeteringClient, VaultClient
from keyleash.client.config import (
    DEFAULT_TARGETS,
    METERING_TARGET_ENV,
    TOKEN_ENV,
    VAULT_TARGET_ENV,
)
from keyleash_mcp.server import bearer_key, build_server, fixed_key
from keyleash_mcp.tools import KeyleashTools

LISTEN_ENV = "KEYLEASH_MCP_LISTEN"
DEFAULT_LISTEN = "127.0.0.1:8070"
PATH = "/mcp"


class SettingsError(Exception):
    """A setting is missing or malformed (exit 2)."""


@dataclass(frozen=True)
class McpSettings:
    vault_target: str
    metering_target: str
    listen: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> McpSettings:
        env = os.environ if env is None else env
        listen = env.get(LISTEN_ENV, "").strip() or DEFAULT_LISTEN
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"{LISTEN_ENV} must be host:port, got {listen!r}")
        return cls(
            env.get(VAULT_TARGET_ENV, "").strip() or DEFAULT_TARGETS[VAULT_TARGET_ENV],
            env.get(METERING_TARGET_ENV, "").strip() or DEFAULT_TARGETS[METERING_TARGET_ENV],
            listen,
        )


def _tools(settings: McpSettings) -> KeyleashTools:
    # No default credential: every call carries the caller's own key.
    return KeyleashTools(
        VaultClient(settings.vault_target, token=""),
        MeteringClient(settings.metering_target, token=""),
    )


async def serve_stdio(settings: McpSettings, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    key = env.get(TOKEN_ENV, "").strip()
    if not key.startswith("vk_"):
        raise SettingsError(f"{TOKEN_ENV} must hold this agent's vault key (vk_…)")
    tools = _tools(settings)
    try:
        await build_server(tools, fixed_key(key)).run_stdio_async()
    finally:
        await tools.vault.close()
        await tools.metering.close()


_NO_KEY = json.dumps(
    {"error": {"code": "UNAUTHENTICATED",
               "message": "send this agent's vault key as Authorization: Bearer vk_..."}}
).encode()  # fmt: skip
_JSON_401 = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]


class RequireBearer:
    """ASGI: a request to the MCP endpoint without `Authorization: Bearer …` is 401, as JSON."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not token.strip():
                await send({"type": "http.response.start", "status": 401, "headers": _JSON_401})
                await send({"type": "http.response.body", "body": _NO_KEY})
                return
        await self.app(scope, receive, send)


def http_server(settings: McpSettings) -> tuple[uvicorn.Server, KeyleashTools]:
    """An uvicorn server for the streamable HTTP transport (not started)."""
    tools = _tools(settings)
    host, _, port = settings.listen.rpartition(":")
    app = build_server(tools, bearer_key).streamable_http_app(
        streamable_http_path=PATH, stateless_http=True, json_response=True, host=host
    )
    config = uvicorn.Config(
        RequireBearer(app), host=host, port=int(port), log_level="warning", lifespan="on"
    )
    return uvicorn.Server(config), tools
