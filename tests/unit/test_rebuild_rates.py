"""How many ALLOWs a Redis loss can have forgotten (vault_service/store/rebuild_rates.py)."""

from __future__ import annotations

import pytest

from keyleash_core.policy import RateLimit
from vault_service.store.rebuild_rates import forgotten_bound


@pytest.mark.parametrize(
    ("limits", "lag_ms", "bound"),
    [
        ([RateLimit(8, 2_000)], 30_000, 8),  # the window's own limit
        ([RateLimit(8, 2_000)], None, 8),  # audit off: the window is full
        ([RateLimit(1000, 3_600_000), RateLimit(10, 1_000)], 1_000, 20),  # 10/s over 1 s
        ([RateLimit(1000, 3_600_000), RateLimit(10, 1_000)], 30_000, 310),
        ([RateLimit(1000, 3_600_000)], None, 1000),
    ],
)
def test_forgotten_bound(limits: list[RateLimit], lag_ms: int | None, bound: int) -> None:
    assert forgotten_bound(limits, lag_ms) == bound
