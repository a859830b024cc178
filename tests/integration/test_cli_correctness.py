"""Issue #14 defects 2, 5 and 7 through the CLI: an unknown currency and a bad tenant id are
usage-level errors naming the field, and `keyleash spend --run` reads one tenant."""

from __future__ import annotations

from tests.conftest import System

from . import test_cli
from .test_cli import Cli, mint, spend_once

kl = test_cli.kl  # the `keyleash ...` runner fixture


async def test_an_unknown_currency_is_refused(kl: Cli, tenant: str) -> None:
    refused = await kl("tenant", "set-budget", "--tenant", tenant, "--daily", "0.01USX")
    assert refused.code != 0 and "INVALID_ARGUMENT" in refused.err
    assert "daily_threshold.currency_code" in refused.err


async def test_a_tenant_id_outside_the_alphabet_is_refused(kl: Cli) -> None:
    for bad in ("*", "acme corp", "Acme"):
        refused = await kl("keys", "list", "--tenant", bad)
        assert (
            refused.code != 0 and "INVALID_ARGUMENT" in refused.err and "tenant_id" in refused.err
        )


async def test_spend_by_run_needs_and_keeps_to_its_tenant(
    kl: Cli, tenant: str, system: System
) -> None:
    secret = (await mint(kl, tenant))["secret"]
    run_id = "run-" + tenant
    await spend_once(system, secret, run_id)
    other = await mint(kl, tenant + "-b")
    await spend_once(system, other["secret"], run_id)  # the same run id in another tenant
    mine = await kl("spend", "--run", run_id, "--tenant", tenant)
    assert mine.code == 0 and "0.400000 USD" in mine.out and "1 event" in mine.out
    unscoped = await kl("spend", "--run", run_id)
    assert unscoped.code != 0 and "subject_tenant_id" in unscoped.err
