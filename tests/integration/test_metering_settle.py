"""settle.lua against a real Redis: holds are settled exactly once, whoever gets there first."""

from __future__ import annotations

import json
import uuid
from typing import Any

from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy, SpendCap, SpendWindow
from keyleash_core.redis import keyspace
from keyleash_core.redis.scripts import Scripts
from metering_service.domain.events import BillingEvent, Kind
from metering_service.domain.settle import SettleParts, settle_call, settle_calls

NOW = 1_764_331_200_000


def _record(tenant: str) -> KeyRecord:
    return KeyRecord(
        key_id="k1", tenant_id=tenant, parent_key_id="", key_path=("k1",), agent_id="a",
        label="", scopes=(), policy=Policy(spend_caps=(SpendCap(Money("USD", 10**7),
        SpendWindow.LIFETIME),)), policy_version=1, state=KeyState.ACTIVE, create_time_ms=0,
        expire_time_ms=2**41,
    )  # fmt: skip


def _event(tenant: str, micros: int, reservation: str) -> BillingEvent:
    return BillingEvent(
        event_id=str(uuid.uuid4()), request_id="r", tenant_id=tenant, key_id="k1",
        parent_key_id="", key_path=("k1",), agent_id="a", kind=Kind.CHARGE,
        amount=Money("USD", micros), occur_time_us=NOW * 1000, reservation_id=reservation,
    )  # fmt: skip


async def _setup(redis_client: Any, tenant: str) -> str:
    counter = keyspace.period_spend(tenant, "k1", "USD", "life")
    await redis_client.hset(
        keyspace.key(tenant, "k1"), mapping={"loaded": "1", "policy_version": "1"}
    )
    await redis_client.set(counter, 1_000_000)  # the hold Authorize placed
    await redis_client.hset(
        keyspace.reservation(tenant, "res1"),
        mapping={"held": "1000000", "currency": "USD", "key_id": "k1", "settled": "0",
                 "targets": json.dumps([["counter", counter]])},
    )  # fmt: skip
    return counter


async def _run(scripts: Scripts, tenant: str, event: BillingEvent, dup: bool) -> None:
    call = settle_call([_record(tenant)], event, NOW, duplicate=dup)
    assert json.loads(await scripts.run("settle", call.keys, call.args))["r"] == "OK"


async def test_a_retry_settles_a_hold_its_first_attempt_never_settled(redis_client: Any) -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    scripts = Scripts(redis_client)
    counter = await _setup(redis_client, tenant)
    event = _event(tenant, 400_000, "res1")
    await _run(scripts, tenant, event, dup=True)  # the first attempt crashed after its commit
    assert int(await redis_client.get(counter)) == 400_000
    await _run(scripts, tenant, event, dup=False)  # the first attempt wakes up late
    await _run(scripts, tenant, event, dup=True)
    assert int(await redis_client.get(counter)) == 400_000


async def test_without_a_hold_only_new_events_add(redis_client: Any) -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    scripts = Scripts(redis_client)
    counter = await _setup(redis_client, tenant)
    event = _event(tenant, 250_000, "")
    await _run(scripts, tenant, event, dup=False)
    await _run(scripts, tenant, event, dup=True)
    assert int(await redis_client.get(counter)) == 1_250_000
    # A second charge naming an already settled hold is money that moved too: it adds.
    await _run(scripts, tenant, _event(tenant, 400_000, "res1"), dup=False)
    other = _event(tenant, 100_000, "res1")
    await _run(scripts, tenant, other, dup=False)
    assert int(await redis_client.get(counter)) == 400_000 + 250_000 + 100_000


async def test_a_retry_adds_an_event_without_hold_that_never_settled_once(
    redis_client: Any,
) -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    scripts = Scripts(redis_client)
    counter = await _setup(redis_client, tenant)
    event = _event(tenant, 250_000, "")
    await _run(scripts, tenant, event, dup=True)  # first attempt committed, crashed before settle
    await _run(scripts, tenant, event, dup=True)
    assert int(await redis_client.get(counter)) == 1_250_000


async def test_a_charge_on_an_unloaded_key_makes_a_concurrent_load_read_again(
    redis_client: Any,
) -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    scripts = Scripts(redis_client)
    name = keyspace.key(tenant, "k1")
    gen_before = await redis_client.hget(name, "gen")  # a loader reads this, then Postgres...
    await _run(scripts, tenant, _event(tenant, 250_000, ""), dup=False)  # ...a charge commits
    payload = json.dumps(
        {
            "fields": {"state": "active"},
            "calls": 0,
            "counters": [],
            "gen": (gen_before or b"0").decode(),
        }
    )
    assert await scripts.run("load_key", [name], [payload]) == -1  # the stale snapshot is refused
    fresh = json.dumps(
        {
            "fields": {"state": "active"},
            "calls": 0,
            "counters": [],
            "gen": (await redis_client.hget(name, "gen")).decode(),
        }
    )
    assert await scripts.run("load_key", [name], [fresh]) == 1


async def test_a_group_settles_its_sum_once_or_not_at_all(redis_client: Any) -> None:
    tenant = "t-" + uuid.uuid4().hex[:12]
    scripts = Scripts(redis_client)
    counter = await _setup(redis_client, tenant)
    chain = [_record(tenant)]
    events = [_event(tenant, 1_000 * (i + 1), "") for i in range(4)]

    async def settle_group(group: list[BillingEvent]) -> str:
        ((call, members),) = settle_calls([(chain, e, False) for e in group], NOW, SettleParts())
        assert members == list(range(len(group)))
        return str(json.loads(await scripts.run("settle", call.keys, call.args))["r"])

    assert await settle_group(events[:3]) == "OK"
    assert int(await redis_client.get(counter)) == 1_000_000 + 6_000
    for event in events[:3]:  # each event's marker: a retry of any of them adds nothing
        assert await redis_client.get(keyspace.settled_event(tenant, event.event_id))
        await _run(scripts, tenant, event, dup=True)
    # A group holding an event settled already applies nothing; each then settles alone.
    assert await settle_group([events[3], events[1]]) == "D"
    assert not await redis_client.exists(keyspace.settled_event(tenant, events[3].event_id))
    assert int(await redis_client.get(counter)) == 1_000_000 + 6_000
    await _run(scripts, tenant, events[3], dup=False)
    assert int(await redis_client.get(counter)) == 1_000_000 + 10_000
