"""What a decision answers about quotas, over real gRPC, Redis and Postgres."""

from __future__ import annotations

from typing import Any

from keyleash.vault.v1 import vault_pb2
from tests.integration.vault_helpers import admin_token, authorize, cap, mint, per

ALLOW = vault_pb2.DECISION_ALLOW


async def test_an_allow_reports_per_window_the_quota_that_stops_the_key_first(
    vault: Any, tenant: str
) -> None:
    # The leaf's calls count against its own windows and every ancestor's; its siblings'
    # calls too. Each window (name and unit) is reported once, by whoever has least left.
    root = await mint(
        vault, admin_token(), tenant, rate_limits=[per(10, 60)], spend_caps=[cap("5.00")]
    )
    rolling = cap("5.00", vault_pb2.SpendCap.WINDOW_ROLLING_24H)
    middle = await mint(
        vault, root.secret, rate_limits=[per(10, 60)], spend_caps=[cap("5.00"), rolling]
    )
    leaf = await mint(vault, middle.secret, rate_limits=[per(2, 60)], spend_caps=[cap("2.00")])
    sibling = await mint(vault, middle.secret)
    cousin = await mint(vault, root.secret)
    for _ in range(4):
        assert (await authorize(vault, sibling.secret, "1.00")).decision == ALLOW
    assert (await authorize(vault, cousin.secret, "0.25")).decision == ALLOW
    reply = await authorize(vault, leaf.secret, "0.50")
    assert reply.decision == ALLOW
    seen = [(q.quota, q.unit, q.subject, q.limit, q.used, q.remaining) for q in reply.quotas]
    assert seen == [
        ("rate/60s", "requests", leaf.key.name, 2, 1, 1),  # root: 6 of 10, middle: 5 of 10
        ("spend/calendar_day", "USD", root.key.name, 5_000_000, 4_750_000, 250_000),
        ("spend/rolling_24h", "USD", middle.key.name, 5_000_000, 4_500_000, 500_000),
    ]
