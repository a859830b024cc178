"""Pure alert logic: crossings, event ids, payloads, the retry schedule and its horizon,
signing secrets."""

from __future__ import annotations

import random

import pytest

from keyleash_core.errors import InvalidArgument
from metering_service.alerts import domain
from metering_service.alerts.secrets import (
    generate_secret,
    open_secret,
    seal_secret,
    validate_secret,
)

HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("spent", "limit", "crossed"),
    [
        (0, 100, ()),
        (49, 100, ()),
        (50, 100, (50,)),
        (79, 100, (50,)),
        (80, 100, (50, 80)),
        (100, 100, (50, 80, 100)),
        (250, 100, (50, 80, 100)),
        (1, 3, ()),
        (2, 3, (50,)),  # 66 %
        (10, 0, ()),  # no limit
    ],
)
def test_crossed_percents(spent: int, limit: int, crossed: tuple[int, ...]) -> None:
    assert domain.crossed_percents(spent, limit) == crossed


def test_event_id_is_stable_per_fact_and_tenant() -> None:
    first = domain.event_id("acme", "key.spend_crossed:k1:calendar_day:d20261201:50")
    assert first == domain.event_id("acme", "key.spend_crossed:k1:calendar_day:d20261201:50")
    assert first != domain.event_id("other", "key.spend_crossed:k1:calendar_day:d20261201:50")
    assert first.startswith("evt_")


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 750, 1_000), (2, 1_500, 2_000), (5, 12_000, 16_000), (30, 2_700_000, 3_600_000)],
)
def test_backoff_doubles_with_jitter_and_a_cap(attempts: int, low: int, high: int) -> None:
    policy, rng = domain.RetryPolicy(), random.Random(7)
    for _ in range(50):
        assert low <= policy.delay_ms(attempts, rng) <= high


@pytest.mark.parametrize(
    ("attempts", "age_ms", "dead"),
    [(1, 0, False), (39, 23 * HOUR_MS, False), (40, 0, True), (3, 24 * HOUR_MS, True)],
)
def test_dead_letter_horizon(attempts: int, age_ms: int, dead: bool) -> None:
    created = 1_800_000_000_000
    assert domain.RetryPolicy().dead(attempts, created, created + age_ms) is dead


def _fact(event_type: str, **data: object) -> domain.Fact:
    return domain.Fact("acme", "f", event_type, data, 0)


def test_slack_text_reads_as_a_sentence() -> None:
    crossed = domain.standard_payload(
        _fact("run.spend_crossed", key_id="k_1", agent_run_id="run-42", percent=80,
              spent_micros=4_000_000, limit_micros=5_000_000, currency_code="USD", window="run"),
        "2026-12-01T00:00:00Z",
    )  # fmt: skip
    text = domain.slack_payload(crossed)["text"]
    assert "80 % of run spent" in text and "tenant acme, key k_1, run run-42" in text
    assert "4.00 USD / 5.00 USD" in text
    frozen = domain.standard_payload(
        _fact("key.frozen", key_id="k_1", actor="admin:ab12", reason="runaway"), "t"
    )
    assert (
        domain.slack_text(frozen)
        == ":lock: Key frozen (tenant acme, key k_1) by admin:ab12: runaway"
    )


def test_unknown_event_types() -> None:
    assert domain.unknown_event_types(["key.frozen", "key.melted"]) == ["key.melted"]


def test_secrets_generate_validate_seal() -> None:
    secret = generate_secret()
    assert validate_secret(secret) == secret
    sealed = seal_secret(b"pepper-0123456789", secret, "tenants/a/alertSubscriptions/as_1")
    assert secret.encode() not in sealed
    assert open_secret(b"pepper-0123456789", sealed, "tenants/a/alertSubscriptions/as_1") == secret
    assert open_secret(b"pepper-0123456789", sealed, "tenants/a/alertSubscriptions/as_2") is None
    assert open_secret(b"another-pepper-xx", sealed, "tenants/a/alertSubscriptions/as_1") is None


@pytest.mark.parametrize("bad", ["abc", "whsec_!!!", "whsec_" + "QUJD"])
def test_bad_secrets_are_refused_without_echo(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_secret(bad)
    assert bad not in str(caught.value) and caught.value.violations[0].field == "signing_secret"
