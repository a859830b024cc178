"""The `keyleash` command: one argparse subcommand per module.

Adding a subcommand: write a module with `register(subparsers)` that adds its parser and sets
`handler=<function taking the parsed args and returning an exit code>` via `set_defaults`, then
append its `register` to COMMANDS below.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from keyleash_core import up

COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    up.register,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyleash",
        description="Keyleash: short-lived, scoped, spend-capped keys for agents, with metering.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `keyleash` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
