"""The failed-credential limiter (pure, with an injected clock)."""

from __future__ import annotations

from keyleash_core.auth import FailedAttemptLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_guesser_is_refused_after_the_limit_until_the_window_passes() -> None:
    clock = Clock()
    limiter = FailedAttemptLimiter(limit=5, window_seconds=60, clock=clock)
    for attempt in range(5):
        assert limiter.retry_after("ipv4:10.0.0.9:4000") == 0
        limiter.failed(f"ipv4:10.0.0.9:{4000 + attempt}")  # a new connection each time
        clock.now += 1
    # The port changes per connection; the host is what is counted.
    assert limiter.retry_after("ipv4:10.0.0.9:5999") == 55.0  # until the first failure ages out
    assert limiter.retry_after("ipv4:10.0.0.10:4000") == 0  # another peer is not slowed
    clock.now += 55
    assert limiter.retry_after("ipv4:10.0.0.9:5999") == 0  # 4 failures left in the window
    limiter.failed("ipv4:10.0.0.9:6000")  # a sliding window: 5 again, until 1001 + 60
    assert limiter.retry_after("ipv4:10.0.0.9:6001") == 1.0
    clock.now += 60
    limiter.failed("ipv4:10.0.0.9:6002")  # everything earlier aged out: one of five
    assert limiter.retry_after("ipv4:10.0.0.9:6003") == 0


def test_ipv6_peers_are_counted_by_host() -> None:
    limiter = FailedAttemptLimiter(limit=2, window_seconds=60, clock=Clock())
    limiter.failed("ipv6:[::1]:5000")
    limiter.failed("ipv6:[::1]:5001")
    assert limiter.retry_after("ipv6:[::1]:5002") > 0
    assert limiter.retry_after("ipv6:[::2]:5002") == 0
