"""The gateway inside `keyleash up`: its development secrets and its start/stop, kept here so
the launcher only calls three functions."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from keyleash_core.http_serving import RunningApp, serve_app
from keyleash_core.settings import SettingsError
from keyleash_gateway.app import create_app
from keyleash_gateway.settings import GatewaySettings, split_listen

DEFAULT_GATEWAY_LISTEN = "0.0.0.0:8080"


def load_or_create_secrets_key(path: Path) -> str:
    """The development master key in `path` (base64 of 32 bytes, 0600), created once.

    Losing it makes every stored connection secret unreadable, like losing the pepper makes
    every key unknown; so it is never regenerated over an existing file.
    """
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    encoded = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(encoded + "\n")
    try:
        os.link(scratch, path)  # atomic and exclusive: a concurrent start keeps one key
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    finally:
        scratch.unlink()
    return encoded


def prepare_env(env: MutableMapping[str, str], state_dir: Path | None) -> None:
    """Adds what the gateway needs to a `keyleash up` environment: the secrets key (from the
    state dir unless set) and a service token for this run (its hash accepted by the services)."""
    if "KEYLEASH_SECRETS_KEY" not in env and "KEYLEASH_SECRETS_KEY_FILE" not in env:
        if state_dir is None:
            raise SettingsError("KEYLEASH_SECRETS_KEY is unset and there is no state dir for one")
        env["KEYLEASH_SECRETS_KEY"] = load_or_create_secrets_key(state_dir / "secrets_key")
    if "KEYLEASH_SERVICE_TOKEN" not in env:
        env["KEYLEASH_SERVICE_TOKEN"] = "kl_service_" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(env["KEYLEASH_SERVICE_TOKEN"].encode()).hexdigest()
        configured = env.get("KEYLEASH_SERVICE_TOKEN_SHA256", "").strip()
        env["KEYLEASH_SERVICE_TOKEN_SHA256"] = f"{configured},{digest}" if configured else digest
    env.setdefault("KEYLEASH_GATEWAY_LISTEN", DEFAULT_GATEWAY_LISTEN)
    if state_dir is not None:  # charges on their way to Metering survive a restart of `keyleash up`
        env.setdefault("KEYLEASH_GATEWAY_STATE_DIR", str(state_dir / "gateway"))


async def start_gateway(env: Mapping[str, str], vault_port: int, metering_port: int) -> RunningApp:
    """Serves the gateway on KEYLEASH_GATEWAY_LISTEN, talking to the services just started."""
    settings = GatewaySettings.from_env(
        {
            **env,
            "KEYLEASH_VAULT_TARGET": f"127.0.0.1:{vault_port}",
            "KEYLEASH_METERING_TARGET": f"127.0.0.1:{metering_port}",
        }
    )
    host, port = split_listen(settings.listen)
    return await serve_app(
        create_app(settings), host, port, "gateway",
        "pass --gateway-listen or set KEYLEASH_GATEWAY_LISTEN",
    )  # fmt: skip
