"""`python -m keyleash_console`: serve the operator console from KEYLEASH_* settings."""

from __future__ import annotations

from keyleash_console.app import create_app
from keyleash_console.settings import ConsoleSettings, split_listen
from keyleash_core.http_serving import run_standalone


def main() -> None:
    run_standalone(
        "keyleash_console",
        ConsoleSettings.from_env,
        lambda settings: split_listen(settings.listen),
        create_app,
    )


if __name__ == "__main__":
    main()
