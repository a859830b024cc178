"""The GetKeyUsage plan (vault_service.domain.usage): which Redis keys and quotas it reads."""

from __future__ import annotations

import orjson
import pytest

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy, RateLimit, SpendCap, SpendWindow
from vault_service.domain.decision import Quota
from vault_service.domain.usage import parse_usage, usage_plan

POLICY = Policy(
    rate_limits=(RateLimit(10, 60_000),),
    spend_caps=(SpendCap(Money("USD", 5_000_000), SpendWindow.CALENDAR_DAY),),
    run_spend_cap=Money("USD", 1_000_000),
)
PARENT = KeyRecord(
    key_id="k1", tenant_id="acme", parent_key_id="", key_path=("k1",), agent_id="bot",
    label="", scopes=("s",), policy=POLICY, policy_version=1, state=KeyState.ACTIVE,
    create_time_ms=0, expire_time_ms=10**13,
)  # fmt: skip
CHILD = KeyRecord(
    key_id="k2", tenant_id="acme", parent_key_id="k1", key_path=("k1", "k2"), agent_id="bot",
    label="", scopes=("s",), policy=Policy(), policy_version=1, state=KeyState.ACTIVE,
    create_time_ms=0, expire_time_ms=10**13,
)  # fmt: skip


@pytest.mark.parametrize(
    ("run", "quotas"),
    [("", ["spend/calendar_day"]), ("r1", ["spend/calendar_day", "run"])],
)
def test_run_caps_are_read_only_for_a_run(run: str, quotas: list[str]) -> None:
    call = usage_plan([CHILD, PARENT], run, now_ms=1_700_000_000_000)
    plan = orjson.loads(call.args[1])
    assert [s["q"] for s in plan["spends"]] == quotas
    assert all(s["link"] == 2 for s in plan["spends"])  # the parent's limits, link 2
    assert call.keys[:5] == [
        "kl:{acme}:tenant", "kl:{acme}:k:k2", "kl:{acme}:k:k1", "kl:{acme}:rate:k2",
        "kl:{acme}:rate:k1",
    ]  # fmt: skip
    assert all(key.startswith("kl:{acme}:") for key in call.keys)  # one Redis Cluster slot


def test_the_answer_is_split_by_link_and_missing_keys_are_named() -> None:
    raw = orjson.dumps(
        {
            "r": "OK",
            "quotas": [
                ["2", "tenants/acme/keys/k1", "rate/60s", "requests", "10", "3", "7", "123"]
            ],
        }
    )
    outcome = parse_usage(raw, 2)
    assert outcome.quotas_by_link == [
        [],
        [Quota("tenants/acme/keys/k1", "rate/60s", "requests", 10, 3, 7, 123)],
    ]
    assert parse_usage(b'{"r": "OK", "quotas": {}}', 1).quotas_by_link == [[]]
    assert parse_usage(b'{"r": "M", "idx": "2"}', 2).missing_index == 2
