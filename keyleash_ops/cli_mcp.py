"""`keyleash mcp [--http]`: Keyleash as MCP tools for an agent (keyleash_mcp). Over stdio, the
way an agent runtime launches a tool server, acting with the vault key in KEYLEASH_TOKEN; with
`--http`, streamable HTTP on KEYLEASH_MCP_LISTEN (default 127.0.0.1:8070, path /mcp), each
caller's key as its Bearer header. Targets: KEYLEASH_VAULT_TARGET / KEYLEASH_METERING_TARGET."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from keyleash_mcp.__main__ import main  # the mcp SDK loads only for this command

    return main(["--http"] if args.http else [])


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash mcp`."""
    parser = subparsers.add_parser(
        "mcp", help="serve Keyleash's tools to an agent over MCP (stdio, or --http)"
    )
    parser.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    parser.set_defaults(handler=_run)
