"""`python -m keyleash_approvals`: serve the approval links from KEYLEASH_* settings."""

from __future__ import annotations

from keyleash_approvals.app import create_app
from keyleash_approvals.settings import ApprovalsSettings, split_listen
from keyleash_core.http_serving import run_standalone


def main() -> None:
    run_standalone(
        "keyleash_approvals",
        ApprovalsSettings.from_env,
        lambda s: split_listen(s.listen),
        create_app,
    )


if __name__ == "__main__":
    main()
