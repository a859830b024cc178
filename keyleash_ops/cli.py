"""The `keyleash` command: one argparse subcommand per module.

Adding a subcommand: write a module with `register(subparsers)` that adds its parser and sets
`handler=<function taking the parsed args and returning an exit code>` via `set_defaults`, then
append `_lazy("<module>")` to COMMANDS below (modules are imported when the parser is built).

Subcommands: `up` (run the system), `keys`, `spend`, `events`, `tenant`, `audit`, `alerts`,
`usage-hooks`, `approvals`, `templates`, `agents`, `fx` (operations over gRPC with an admin
token; see keyleash_ops.cli_common for flags and exit codes), `console` (the operator's web
pages), `mcp` (tools for an agent) and `demo`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, cast

if TYPE_CHECKING:
    Register = Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]


def _lazy(module: str) -> Register:
    """`keyleash_core.<module>.register`, imported only when the parser is built, so that
    GRPC_VERBOSITY can be set before grpc is first imported (see main)."""

    def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        loaded: Register = importlib.import_module(f"keyleash_ops.{module}").register
        loaded(subparsers)

    return register


COMMANDS: list[Register] = [
    _lazy("up"),
    _lazy("cli_keys"),
    _lazy("cli_ledger"),
    _lazy("cli_connections"),
    _lazy("cli_alerts"),
    _lazy("cli_mcp"),
    _lazy("cli_templates"),
    _lazy("cli_usage_hooks"),
    _lazy("cli_approvals"),
    _lazy("cli_console"),
    _lazy("cli_fx"),
    _lazy("demo"),
]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr, flush=True)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keyleash",
        description="Keyleash: short-lived, scoped, spend-capped keys for agents, with metering.",
    )
    subparsers = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND", required=True),
    )
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `keyleash` console script; returns the process exit code."""
    # grpc's C core logs e.g. TLS handshake failures at INFO on stderr; errors are ours to print.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
