"""`python -m keyleash_gateway`: run the egress gateway from KEYLEASH_* settings."""

from __future__ import annotations

from keyleash_core.http_serving import run_standalone
from keyleash_gateway.app import create_app
from keyleash_gateway.settings import GatewaySettings, split_listen


def main() -> None:
    run_standalone(
        "keyleash_gateway",
        GatewaySettings.from_env,
        lambda settings: split_listen(settings.listen),
        create_app,
    )


if __name__ == "__main__":
    main()
