"""`keyleash up`: the whole system on one machine, in one process.

Starts Redis and PostgreSQL (via keyleash_ops.devstores) unless KEYLEASH_REDIS_URL /
KEYLEASH_DATABASE_URL name existing ones, keeps their data under a state dir so a restart keeps it,
creates a development pepper once, mints a fresh development admin token on every start, and
serves Vault and Metering in one asyncio loop until SIGINT/SIGTERM. Then it drains both servers and
stops the stores it started. Start-up problems end in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from keyleash_core.settings import SettingsError, env_int, env_str
from keyleash_core.stores import StartupError
from keyleash_ops.devstores import DevStoreError, ManagedServer
from keyleash_ops.up_http import host_port, prepare_http_env, start_http_components
from keyleash_ops.up_state import (
    ROOT_STATE_DIR,
    UpError,
    check_bindable,
    default_state_dir,
    ensure_state_dir,
    load_or_create_pepper,
    new_admin_token,
)
from keyleash_ops.up_steps import migrate, say, step
from keyleash_ops.up_stores import start_own_stores, stop_stores

if TYPE_CHECKING:
    from keyleash_core.grpc_server import BuiltServer

PROG = "keyleash up"
# A first start creates every table; a slow disk may need more than a store call's timeout.
MIGRATE_TIMEOUT_SECONDS = 30.0
DEFAULT_VAULT_LISTEN = "0.0.0.0:50051"
DEFAULT_METERING_LISTEN = "0.0.0.0:50052"
GRACE_SECONDS = 5.0  # in-flight RPCs get this long to finish on Ctrl-C
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "[::]", "::"})

log = logging.getLogger("keyleash.up")


class _Interrupted(Exception):
    """SIGINT/SIGTERM arrived while starting: stop what was started and exit 0."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash up` to the `keyleash` command."""
    parser = subparsers.add_parser(
        "up",
        help="run Vault and Metering on this machine (with their own Redis/Postgres if needed)",
        description=(
            "Run the whole system on one machine: Vault and Metering in one process, on Redis "
            "and PostgreSQL from KEYLEASH_REDIS_URL / KEYLEASH_DATABASE_URL, or on servers "
            "started here (data kept in the state dir) when those are unset. Prints a fresh "
            "development admin token once. Ctrl-C (or SIGTERM) stops everything it started."
        ),
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "where the embedded Redis/Postgres data and the development pepper live "
            "(default: $XDG_STATE_HOME/keyleash, i.e. ~/.local/state/keyleash; when run as root: "
            f"{ROOT_STATE_DIR}, because the unprivileged user that runs postgres cannot "
            "traverse /root)"
        ),
    )
    parser.add_argument(
        "--vault-listen",
        metavar="ADDR",
        default=None,
        help=f"Vault listen address (default: $KEYLEASH_VAULT_LISTEN or {DEFAULT_VAULT_LISTEN}; "
        "port 0 picks a free port)",
    )
    parser.add_argument(
        "--metering-listen",
        metavar="ADDR",
        default=None,
        help="Metering listen address (default: $KEYLEASH_METERING_LISTEN or "
        f"{DEFAULT_METERING_LISTEN}; port 0 picks a free port)",
    )
    parser.add_argument(
        "--gateway-listen",
        metavar="ADDR",
        default=None,
        help="egress gateway listen address (default: $KEYLEASH_GATEWAY_LISTEN or 0.0.0.0:8080; "
        "port 0 picks a free port)",
    )
    parser.add_argument(
        "--usage-hooks-listen",
        metavar="ADDR",
        default=None,
        help="usage webhook receiver listen address (default: $KEYLEASH_USAGE_HOOKS_LISTEN or "
        "0.0.0.0:8085; port 0 picks a free port)",
    )
    parser.add_argument(
        "--console-listen",
        metavar="ADDR",
        default=None,
        help="operator console listen address (default: $KEYLEASH_CONSOLE_LISTEN or "
        "127.0.0.1:8090; port 0 picks a free port)",
    )
    parser.set_defaults(handler=run)


# --- the plan: everything decided before the servers start -------------------------------------


@dataclass
class _Plan:
    vault_env: dict[str, str]
    metering_env: dict[str, str]
    admin_token: str
    state_dir: Path | None = None
    embedded: dict[str, str] = field(default_factory=dict)  # store name -> URL we started


def _check_log_level(env: Mapping[str, str]) -> int:
    name = env_str(env, "KEYLEASH_LOG_LEVEL", "WARNING").upper()
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise SettingsError("KEYLEASH_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR")
    return level


def _preflight(env: Mapping[str, str]) -> None:
    """Reject bad settings before spending seconds on starting Redis/Postgres."""
    from metering_service.settings import MeteringSettings
    from vault_service.settings import VaultSettings

    probe = dict(env)
    probe.setdefault("KEYLEASH_REDIS_URL", "redis://127.0.0.1:1/0")
    probe.setdefault("KEYLEASH_DATABASE_URL", "postgresql://127.0.0.1:1/keyleash")
    probe.setdefault("KEYLEASH_KEY_PEPPER", "x" * 16)
    VaultSettings.from_env(probe)
    MeteringSettings.from_env(probe)
    check_bindable("vault", probe["KEYLEASH_VAULT_LISTEN"])
    check_bindable("metering", probe["KEYLEASH_METERING_LISTEN"])


def _wants_secrets_key(env: Mapping[str, str]) -> bool:
    return "KEYLEASH_SECRETS_KEY" not in env and "KEYLEASH_SECRETS_KEY_FILE" not in env


def _plan(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    started: list[ManagedServer],
    stop: _StopFlag,
) -> _Plan:
    """Decide the settings and start the stores we own (appended to `started` as they come up)."""
    env = {name: value for name, value in environ.items() if value.strip()}  # empty means unset
    env["KEYLEASH_VAULT_LISTEN"] = (
        args.vault_listen or env_str(env, "KEYLEASH_VAULT_LISTEN") or DEFAULT_VAULT_LISTEN
    )
    env["KEYLEASH_METERING_LISTEN"] = (
        args.metering_listen or env_str(env, "KEYLEASH_METERING_LISTEN") or DEFAULT_METERING_LISTEN
    )
    _preflight(env)
    metrics_port = env_int(env, "KEYLEASH_METRICS_PORT", 0)

    own_redis = "KEYLEASH_REDIS_URL" not in env
    own_postgres = "KEYLEASH_DATABASE_URL" not in env
    state_dir: Path | None = None
    if own_redis or own_postgres or "KEYLEASH_KEY_PEPPER" not in env or _wants_secrets_key(env):
        state_dir = ensure_state_dir(
            args.state_dir or default_state_dir(environ, os.geteuid()), for_postgres=own_postgres
        )
    if "KEYLEASH_KEY_PEPPER" not in env:
        assert state_dir is not None
        env["KEYLEASH_KEY_PEPPER"] = load_or_create_pepper(state_dir / "pepper")
    embedded = start_own_stores(env, state_dir, own_redis, own_postgres, started, stop.check)

    prepare_http_env(
        env, state_dir, args.gateway_listen, args.usage_hooks_listen, args.console_listen
    )
    token, digest = new_admin_token()
    configured = env_str(env, "KEYLEASH_ADMIN_TOKEN_SHA256")
    env["KEYLEASH_ADMIN_TOKEN_SHA256"] = f"{configured},{digest}" if configured else digest

    # One metrics port per service process: the configured one for Vault, the next for Metering.
    vault_env, metering_env = dict(env), dict(env)
    if metrics_port > 0:
        vault_env["KEYLEASH_METRICS_PORT"] = str(metrics_port)
        metering_env["KEYLEASH_METRICS_PORT"] = str(metrics_port + 1)
    return _Plan(vault_env, metering_env, token, state_dir, embedded)


# --- signals -------------------------------------------------------------------------------------


class _StopFlag:
    """SIGINT/SIGTERM as a request to stop, honoured at the next safe point.

    While starting and while stopping the stores, a signal only sets the flag (an exception in
    the middle of starting Postgres could leave it running unowned). While serving, the event
    loop's own handlers set it and wake the loop.
    """

    def __init__(self) -> None:
        self.requested = False

    def set(self, *_: Any) -> None:
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise _Interrupted

    def install(self) -> dict[int, Callable[[int, FrameType | None], Any] | int | None]:
        return {sig: signal.signal(sig, self.set) for sig in _STOP_SIGNALS}


# --- serving -------------------------------------------------------------------------------------


def _client_target(address: str, port: int) -> str:
    host = address.rpartition(":")[0]
    return f"{'localhost' if host in _WILDCARD_HOSTS else host}:{port}"


def _banner(plan: _Plan, vault_port: int, metering_port: int) -> str:
    vault_address = plan.vault_env["KEYLEASH_VAULT_LISTEN"]
    metering_address = plan.metering_env["KEYLEASH_METERING_LISTEN"]
    lines = [
        "keyleash up: development system running",
        f"  vault listening on {host_port(vault_address, vault_port)}",
        f"  metering listening on {host_port(metering_address, metering_port)}",
    ]
    for store, variable in (("redis", "KEYLEASH_REDIS_URL"), ("postgres", "KEYLEASH_DATABASE_URL")):
        if store in plan.embedded:
            lines.append(f"  {store} at {plan.embedded[store]}")
        else:
            lines.append(f"  {store} from {variable}")
    if plan.state_dir is not None:
        lines.append(f"  state in {plan.state_dir}")
    if (metrics := plan.vault_env.get("KEYLEASH_METRICS_PORT", "0")) != "0":
        lines.append(
            f"  metrics ports: vault {metrics}, "
            f"metering {plan.metering_env['KEYLEASH_METRICS_PORT']}"
        )
    lines += [
        "",
        "  development admin token (valid until this process stops; shown only here):",
        f"    {plan.admin_token}",
        "  send it as gRPC metadata:  authorization: Bearer <token>",
        "",
        f"  try:  grpcurl -plaintext {_client_target(vault_address, vault_port)} list",
        "",
        "Ctrl-C to stop.",
    ]
    return "\n".join(lines)


async def _create(kind: str, env: Mapping[str, str]) -> BuiltServer:
    """Start one service from `env`; a port that cannot be bound becomes an OSError."""
    if kind == "vault":
        from vault_service.server import create_server as create_vault
        from vault_service.settings import VaultSettings

        settings_v = VaultSettings.from_env(env)
        address = settings_v.listen
        create = create_vault(settings_v)
    else:
        from metering_service.server import create_server as create_metering
        from metering_service.settings import MeteringSettings

        settings_m = MeteringSettings.from_env(env)
        address = settings_m.listen
        create = create_metering(settings_m)
    try:
        return await create
    except RuntimeError as error:  # grpc: "Failed to bind to address ..."
        if "bind" not in str(error).lower():
            raise
        raise OSError(
            f"{kind} cannot listen on {address} (in use or not available; "
            f"pass --{kind}-listen or set KEYLEASH_{kind.upper()}_LISTEN)"
        ) from None
    except OSError as error:
        raise OSError(f"{kind} cannot listen on {address}: {error}") from None


async def _serve(plan: _Plan, stop: _StopFlag) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal() -> None:
        stop.set()
        stopping.set()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    if stop.requested:
        stopping.set()
    servers: list[BuiltServer] = []
    stoppers: list[Callable[[], Awaitable[None]]] = []
    try:
        with step("applying database migrations"):
            applied = await migrate(
                plan.vault_env["KEYLEASH_DATABASE_URL"], MIGRATE_TIMEOUT_SECONDS
            )
        say(f"applied {', '.join(applied)}" if applied else "schema up to date")
        with step("starting vault"):
            servers.append(await _create("vault", plan.vault_env))
        if not stopping.is_set():
            with step("starting metering"):
                servers.append(await _create("metering", plan.metering_env))
        if not stopping.is_set():
            lines = await start_http_components(
                plan.vault_env, servers[0].port, servers[1].port, stoppers
            )
            banner = _banner(plan, servers[0].port, servers[1].port).splitlines()
            banner[3:3] = lines
            print("\n".join(banner), flush=True)
        await stopping.wait()
        print("keyleash up: stopping", flush=True)
    finally:
        for stop_one in stoppers:
            await stop_one()
        results = await asyncio.gather(
            *(server.stop(GRACE_SECONDS) for server in reversed(servers)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning("stopping a server failed: %r", result)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def run(args: argparse.Namespace) -> int:
    """`keyleash up`: serve until SIGINT/SIGTERM (exit 0); start-up failure exits 2."""
    stop = _StopFlag()
    previous = stop.install()
    started: list[ManagedServer] = []
    try:
        logging.basicConfig(
            level=_check_log_level(os.environ),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
        plan = _plan(args, os.environ, started, stop)
        asyncio.run(_serve(plan, stop))
        return 0
    except (_Interrupted, KeyboardInterrupt):
        return 0
    except (DevStoreError, SettingsError, StartupError, UpError, OSError) as error:
        if stop.requested:  # e.g. Ctrl-C reached initdb too; stopping was asked for anyway
            return 0
        print(f"{PROG}: {_one_line(error)}", file=sys.stderr, flush=True)
        return 2
    finally:
        stop.install()  # signals while the stores stop just set the flag
        stop_stores(started, PROG)
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler)
