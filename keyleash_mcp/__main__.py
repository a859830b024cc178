"""`python -m keyleash_mcp [--http]` (also `keyleash mcp`): stdio by default, the vault key in
KEYLEASH_TOKEN; `--http` serves streamable HTTP on KEYLEASH_MCP_LISTEN (default 127.0.0.1:8070,
path /mcp), each caller's key as its Bearer header."""

from __future__ import annotations

import argparse
import asyncio
import sys

from keyleash_mcp.app import McpSettings, SettingsError, http_server, serve_stdio


async def _serve_http(settings: McpSettings) -> None:
    server, tools = http_server(settings)
    try:
        await server.serve()
    finally:
        await tools.vault.close()
        await tools.metering.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keyleash mcp", description=__doc__)
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    args = parser.parse_args(argv)
    try:
        settings = McpSettings.from_env()
        asyncio.run(_serve_http(settings) if args.http else serve_stdio(settings))
    except SettingsError as error:
        print(f"keyleash mcp: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
