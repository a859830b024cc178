"""The HTTP components `keyleash up` runs next to the services: the egress gateway, the usage
webhook receiver, the approvals endpoint and the operator console, each in this process, each
reached only over the services' gRPC ports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path


def host_port(address: str, port: int) -> str:
    """ "0.0.0.0:8080" with the port actually bound (port 0 picks one)."""
    host, sep, _ = address.rpartition(":")
    return f"{host}:{port}" if sep else f"{address}:{port}"


def prepare_http_env(
    env: MutableMapping[str, str],
    state_dir: Path | None,
    gateway_listen: str | None,
    usage_hooks_listen: str | None,
    console_listen: str | None,
) -> None:
    """Listen addresses (flags win), the gateway's secrets key and this run's service token."""
    # Imported here, like the services: `keyleash up --help` loads no web stack.
    from keyleash_approvals import embedded as approvals_embedded
    from keyleash_console import embedded as console_embedded
    from keyleash_gateway import embedded as gateway_embedded
    from keyleash_usage_hooks import embedded as hooks_embedded

    if console_listen:
        env["KEYLEASH_CONSOLE_LISTEN"] = console_listen
    if gateway_listen:
        env["KEYLEASH_GATEWAY_LISTEN"] = gateway_listen
    if usage_hooks_listen:
        env["KEYLEASH_USAGE_HOOKS_LISTEN"] = usage_hooks_listen
    gateway_embedded.prepare_env(env, state_dir)
    hooks_embedded.prepare_env(env)
    approvals_embedded.prepare_env(env)
    console_embedded.prepare_env(env)


async def start_http_components(
    env: Mapping[str, str],
    vault_port: int,
    metering_port: int,
    stoppers: list[Callable[[], Awaitable[None]]],
) -> list[str]:
    """Starts each (their stop functions appended to `stoppers`); the banner lines naming them."""
    from keyleash_approvals import embedded as approvals_embedded
    from keyleash_console import embedded as console_embedded
    from keyleash_gateway import embedded as gateway_embedded
    from keyleash_usage_hooks import embedded as hooks_embedded

    gateway = await gateway_embedded.start_gateway(env, vault_port, metering_port)
    stoppers.append(gateway.stop)
    hooks = await hooks_embedded.start_usage_hooks(env, vault_port, metering_port)
    stoppers.append(hooks.stop)
    approvals = await approvals_embedded.start_approvals(env, vault_port)
    stoppers.append(approvals.stop)
    gateway_at = host_port(env["KEYLEASH_GATEWAY_LISTEN"], gateway.port)
    hooks_at = host_port(env["KEYLEASH_USAGE_HOOKS_LISTEN"], hooks.port)
    console = await console_embedded.start_console(env, vault_port, metering_port)
    stoppers.append(console.stop)
    approvals_at = host_port(env["KEYLEASH_APPROVALS_LISTEN"], approvals.port)
    console_at = host_port(env["KEYLEASH_CONSOLE_LISTEN"], console.port)
    return [
        f"  gateway listening on {gateway_at}",
        f"  usage webhooks listening on {hooks_at} (POST /v1/tenants/{{tenant}}/usage-events)",
        f"  approval links listening on {approvals_at}",
        f"  console on http://{console_at} (sign in with the admin token)",
    ]
