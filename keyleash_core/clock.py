"""The clock domain logic is given, so tests can move time instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """Wall-clock time in ms since the epoch (UTC)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000
