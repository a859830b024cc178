"""The `keyleash` command: one argparse subcommand per module.

Adding a subcommand: write a module with `register(subparsers)` that adds its parser and sets
`handler=<function taking the parsed args and returning an exit code>` via `set_defaults`, then
append its `register` to COMMANDS below.

Subcommands: `up` (run the system), `keys`, `spend`, `events`, `tenant`, `audit` (operations over
gRPC with an admin token; see keyleash_core.cli_common for flags and exit codes) and `demo`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from keyleash_core import cli_keys, cli_ledger, demo, up

COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    up.register,
    cli_keys.register,
    cli_ledger.register,
    demo.register,
]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"keyleash: {self.prog}: {message} (see --help)", file=sys.stderr, flush=True)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keyleash",
        description="Keyleash: short-lived, scoped, spend-capped keys for agents, with metering.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `keyleash` console script; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
