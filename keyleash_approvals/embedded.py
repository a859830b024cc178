"""The approvals endpoint inside `keyleash up`: its listen address, the public URL the alerts'
one-click links point at, and its start/stop."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from keyleash_approvals.app import create_app
from keyleash_approvals.settings import DEFAULT_LISTEN, ApprovalsSettings, split_listen
from keyleash_core.http_serving import RunningApp, serve_app


def prepare_env(env: MutableMapping[str, str]) -> None:
    """The endpoint's listen address and, when its port is fixed and no public URL is set, the
    URL links are minted for (metering reads it at start, before the endpoint is bound)."""
    env.setdefault("KEYLEASH_APPROVALS_LISTEN", DEFAULT_LISTEN)
    host, port = split_listen(env["KEYLEASH_APPROVALS_LISTEN"])
    if port and "KEYLEASH_APPROVALS_PUBLIC_URL" not in env:
        shown = "localhost" if host in ("0.0.0.0", "::", "") else host
        env["KEYLEASH_APPROVALS_PUBLIC_URL"] = f"http://{shown}:{port}"


async def start_approvals(env: Mapping[str, str], vault_port: int) -> RunningApp:
    """Serves the endpoint on KEYLEASH_APPROVALS_LISTEN, talking to the Vault just started."""
    settings = ApprovalsSettings.from_env(
        {**env, "KEYLEASH_VAULT_TARGET": f"127.0.0.1:{vault_port}"}
    )
    host, port = split_listen(settings.listen)
    return await serve_app(
        create_app(settings), host, port, "approvals endpoint", "set KEYLEASH_APPROVALS_LISTEN"
    )
