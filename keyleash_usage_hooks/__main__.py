"""`python -m keyleash_usage_hooks`: run the usage webhook receiver from KEYLEASH_* settings."""

from __future__ import annotations

from keyleash_core.http_serving import run_standalone
from keyleash_usage_hooks.app import create_app
from keyleash_usage_hooks.settings import UsageHooksSettings, split_listen


def main() -> None:
    run_standalone(
        "keyleash_usage_hooks",
        UsageHooksSettings.from_env,
        lambda s: split_listen(s.listen),
        create_app,
    )


if __name__ == "__main__":
    main()
