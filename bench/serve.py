"""`python -m bench.serve vault|metering`: run a service on uvloop (`python -m bench --server-loop
uvloop`), to measure what uvloop would give without changing the services' own entry points."""

from __future__ import annotations

import asyncio
import sys


def main() -> None:
    import uvloop  # type: ignore[import-not-found,unused-ignore]  # optional, not a dependency

    from keyleash_core.main import run_service

    name = sys.argv[1]
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # asyncio.run() then uses uvloop
    if name == "vault":
        from vault_service.server import start_from_env
    elif name == "metering":
        from metering_service.server import start_from_env
    else:
        raise SystemExit(f"usage: python -m bench.serve vault|metering, not {name!r}")
    run_service(name, start_from_env)


if __name__ == "__main__":
    main()
