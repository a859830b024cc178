"""Metering's pure parts: pricing arithmetic, kinds, digests, settlement plans, the writer."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any, cast

import asyncpg
import pytest

from keyleash.metering.v1 import metering_pb2
from keyleash_core.errors import FailedPrecondition, InvalidArgument, StoreUnavailable
from keyleash_core.fx import Conversion
from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.money import Money
from keyleash_core.policy import Policy, SpendCap, SpendWindow
from keyleash_core.times import datetime_from_us, us_from_datetime
from metering_service import convert
from metering_service.domain.events import (
    BillingEvent,
    Kind,
    WriteResult,
    charge_kind,
    new_event_id,
    payload_digest,
)
from metering_service.domain.pricing import ceil_div, price_for, usage_cost_micros
from metering_service.domain.settle import MAX_GROUP, SettleParts, settle_call, settle_calls
from metering_service.pricing import ModelPrice, load_price_table
from metering_service.store import writer as writer_module
from metering_service.store.billing import PendingWrite

PRICE = ModelPrice("m", 2_500_000, 10_000_000, 1_250_000, "2026-11-01")


@pytest.mark.parametrize(
    ("tokens", "micros"),
    [
        ((0, 0, 0), 0),
        ((1, 0, 0), 3),  # 2.5 micros rounds up to 3
        ((2, 0, 0), 5),
        ((0, 1, 0), 10),
        ((0, 0, 1), 2),  # 1.25 -> 2
        ((1234, 567, 89), 8867),  # 8866.25 -> 8867
        ((1_000_000, 1_000_000, 1_000_000), 13_750_000),
    ],
)
def test_usage_cost_rounds_up_to_the_micro(tokens: tuple[int, int, int], micros: int) -> None:
    assert usage_cost_micros(PRICE, *tokens) == micros


def test_usage_cost_never_uses_floats_even_for_huge_counts() -> None:
    # 10**12 tokens * 10**7 micros/M exceeds a double's exact range; integers stay exact.
    assert usage_cost_micros(PRICE, 999_999_999_999, 0, 0) == ceil_div(
        999_999_999_999 * 2_500_000, 1_000_000
    )
    with pytest.raises(InvalidArgument):
        usage_cost_micros(PRICE, -1, 0, 0)


def test_price_table_loads_and_unknown_models_fail() -> None:
    table = load_price_table()
    assert table.cost_source == f"prices:{table.version}"
    assert {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "claude-haiku-4"} <= set(table.models)
    with pytest.raises(FailedPrecondition) as caught:
        price_for(table, "nope")
    assert caught.value.reason == "UNKNOWN_MODEL" and caught.value.metadata["model"] == "nope"


def test_kinds_and_digests() -> None:
    assert [charge_kind(m) for m in (5, -5, 0)] == [Kind.CHARGE, Kind.REFUND, Kind.RELEASE]
    assert payload_digest("Charge", b"x") == payload_digest("Charge", b"x")
    assert payload_digest("Charge", b"x") != payload_digest("RecordUsage", b"x")
    assert us_from_datetime(datetime_from_us(1_764_000_000_123_456)) == 1_764_000_000_123_456


def _record(key_id: str, path: tuple[str, ...], caps: tuple[SpendCap, ...]) -> KeyRecord:
    return KeyRecord(
        key_id=key_id, tenant_id="t1", parent_key_id=path[-2] if len(path) > 1 else "",
        key_path=path, agent_id="a", label="", scopes=(), policy=Policy(spend_caps=caps),
        policy_version=3, state=KeyState.ACTIVE, create_time_ms=0, expire_time_ms=2**40,
    )  # fmt: skip


def _event(micros: int, occur_ms: int, currency: str = "USD") -> BillingEvent:
    return BillingEvent(
        event_id="e", request_id="r", tenant_id="t1", key_id="k2", parent_key_id="k1",
        key_path=("k1", "k2"), agent_id="a", kind=Kind.CHARGE, amount=Money(currency, micros),
        occur_time_us=occur_ms * 1000,
    )  # fmt: skip


def test_settle_plan_adds_only_in_the_charge_currency_and_live_windows() -> None:
    now = 1_764_331_200_000  # 2025-11-28T12:00Z
    chain = [
        _record("k2", ("k1", "k2"), (SpendCap(Money("USD", 10), SpendWindow.ROLLING_24H),)),
        _record(
            "k1",
            ("k1",),
            (
                SpendCap(Money("USD", 10), SpendWindow.CALENDAR_DAY),
                SpendCap(Money("EUR", 10), SpendWindow.LIFETIME),
            ),
        ),
    ]
    call = settle_call(chain, _event(400_000, now - 1000), now)
    plan = json.loads(call.args[0])
    assert call.keys[:5] == [
        "kl:{t1}:tenant",
        "kl:{t1}:res:-",
        "kl:{t1}:settled:e",
        "kl:{t1}:k:k2",
        "kl:{t1}:k:k1",
    ]
    assert [len(link["adds"]) for link in plan["chain"]] == [1, 1]
    assert plan["chain"][0]["adds"][0]["kind"] == "rolling"
    assert call.keys[plan["chain"][1]["adds"][0]["k"][0] - 1] == "kl:{t1}:sp:k1:USD:d20251128"
    assert (plan["day"], plan["today"], plan["res"]) == ("d20251128", "d20251128", 0)
    # Older than the rolling window and yesterday's period long over: nothing left to add to.
    old = json.loads(settle_call(chain, _event(1, now - 3 * 86_400_000), now).args[0])
    assert [len(link["adds"]) for link in old["chain"]] == [0, 0]
    # The chain's part cached per second changes no plan, whenever in the second the event
    # occurred and whenever in the second it is settled.
    parts = SettleParts()
    for occur in (now - 1000, now - 999, now - 1, now - 3 * 86_400_000 + 17):
        for settled_at in (now, now + 1, now + 999):
            event = _event(400_000, occur)
            cached = settle_call(chain, event, settled_at, parts=parts)
            assert cached == settle_call(chain, event, settled_at)
    assert len(parts._parts) == 2  # one per second of occurrence (all settled in one second)
    # Each window adds the event's amount in its own currency, which the plan carries once.
    eur = _event(400_000, now - 1000)._replace(
        converted={"EUR": Conversion(Money("EUR", 350_000), "0.875", "v1")}
    )
    plan = json.loads(settle_call(chain, eur, now, parts=parts).args[0])
    adds = [a for link in plan["chain"] for a in link["adds"]]
    assert [a["cur"] for a in adds] == ["USD", "USD", "EUR"]
    assert plan["amts"] == {"USD": 400_000, "EUR": 350_000}


async def test_writer_batches_waiting_writes_and_fails_a_whole_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []
    fail = False
    in_flight, most_in_flight = 0, 0

    async def commit(_pool: Any, batch: list[PendingWrite]) -> list[WriteResult]:
        nonlocal in_flight, most_in_flight
        sizes.append(len(batch))
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        if fail:
            raise StoreUnavailable("postgres")
        return [WriteResult(p.event, False) for p in batch]

    monkeypatch.setattr(writer_module, "commit_batch", commit)
    # The patched commit_batch never touches the pool, so the writer gets none.
    no_pool = cast("asyncpg.Pool[asyncpg.Record]", None)
    writer = writer_module.GroupCommitWriter(no_pool, max_batch_size=50)
    writer.start()
    try:
        items = [PendingWrite(_event(i, 0), b"") for i in range(120)]
        results = await asyncio.gather(*(writer.write(i) for i in items))
        assert len(results) == 120 and max(sizes) == 50 and len(sizes) <= 4
        assert most_in_flight == 2  # two writers: one batch commits while the next is sent
        # One caller's many items: split into batches, answered in the caller's order.
        sizes.clear()
        many = await writer.write_many(items)
        assert [o.event for o in many if isinstance(o, WriteResult)] == [i.event for i in items]
        assert sorted(sizes) == [20, 50, 50]
        fail = True
        outcomes = await asyncio.gather(
            *(writer.write(i) for i in items[:10]), return_exceptions=True
        )
        assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    finally:
        await writer.close()
    with pytest.raises(StoreUnavailable):
        await writer.write(items[0])


def test_an_event_id_is_a_random_version_4_uuid_in_canonical_text() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower-case hex, dashes at 8-4-4-4-12
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every bit outside the version and variant fields varies across ids
    fixed = ~0
    for a, b in itertools.pairwise(ids):
        fixed &= ~(uuid.UUID(a).int ^ uuid.UUID(b).int)
    version_and_variant = (0xF << 76) | (0x3 << 62)
    assert fixed & ((1 << 128) - 1) == version_and_variant


def test_a_batch_settles_one_keys_new_events_as_groups() -> None:
    now = 1_764_331_200_000
    chain = [_record("k1", ("k1",), (SpendCap(Money("USD", 10), SpendWindow.CALENDAR_DAY),))]
    second = [_event(100 + i, now - 1000)._replace(event_id=f"e{i}") for i in range(3)]
    earlier = _event(7, now - 5000)._replace(event_id="late")  # another second: its own group
    held = _event(9, now - 1000)._replace(event_id="held", reservation_id="r1")
    items = [(chain, e, False) for e in [*second, earlier, held]]
    items.append((chain, second[0], True))  # a retry of e0: alone, on its marker
    calls = settle_calls(items, now, SettleParts())
    assert sorted(members for _call, members in calls) == [[0, 1, 2], [3], [4], [5]]
    group = next(call for call, members in calls if members == [0, 1, 2])
    plan = json.loads(group.args[0])
    assert (plan["eid"], plan["more"]) == ("e0", ["e1", "e2"])
    assert (plan["amt"], plan["amts"]) == (303, {"USD": 303})
    # The first event's marker in KEYS[3], the others' after the chain's keys, in order.
    assert group.keys[2] == "kl:{t1}:settled:e0"
    assert group.keys[-2:] == ["kl:{t1}:settled:e1", "kl:{t1}:settled:e2"]
    alone = {members[0]: call for call, members in calls if len(members) == 1}
    assert alone[3] == settle_call(chain, earlier, now)
    assert alone[5] == settle_call(chain, second[0], now, duplicate=True)
    assert "more" not in json.loads(alone[4].args[0])


def test_a_group_holds_at_most_max_group_events() -> None:
    now = 1_764_331_200_000
    chain = [_record("k1", ("k1",), (SpendCap(Money("USD", 10), SpendWindow.LIFETIME),))]
    events = [_event(1, now)._replace(event_id=f"e{i}") for i in range(MAX_GROUP + 1)]
    calls = settle_calls([(chain, e, False) for e in events], now, SettleParts())
    assert [len(members) for _call, members in calls] == [MAX_GROUP, 1]
    assert json.loads(calls[0][0].args[0])["amt"] == MAX_GROUP


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cached_input_tokens"])
def test_a_negative_token_count_is_named(field: str) -> None:
    request = metering_pb2.RecordUsageRequest(request_id="r", key_id="k", model="gpt-4o")
    setattr(request, field, -1)
    with pytest.raises(InvalidArgument) as caught:
        convert.usage_spec(request, 1_764_331_200_000)
    assert caught.value.metadata == {"field": field}
    request = metering_pb2.RecordUsageRequest(request_id="r", key_id="k", model="gpt-4o")
    setattr(request, field, 7)
    assert getattr(convert.usage_spec(request, 1_764_331_200_000), field) == 7


def test_a_basic_event_holds_its_ids_kind_and_amount_only() -> None:
    event = _event(1_234, 1_764_331_200_000)._replace(event_id="e1", request_id="r1")
    filled = metering_pb2.RecordUsageResponse()
    convert.fill_basic_event(filled.event, event)
    assert filled.event == metering_pb2.BillingEvent(
        event_id="e1", request_id="r1", kind=metering_pb2.BillingEvent.KIND_CHARGE,
        amount={"currency_code": "USD", "micros": 1_234},
    )  # fmt: skip


def test_a_recorded_event_changes_its_record_time_and_commit_only() -> None:
    event = _event(5, 1_764_331_200_000)._replace(
        converted={"EUR": Conversion(Money("EUR", 4), "0.875", "v1")}
    )
    assert event.recorded(7, "42") == event._replace(record_time_us=7, commit_xid="42")


def test_a_group_sums_its_events_in_every_currency_they_count_in() -> None:
    now = 1_764_331_200_000
    chain = [_record("k1", ("k1",), (SpendCap(Money("EUR", 10), SpendWindow.LIFETIME),))]
    events = [
        _event(usd, now)._replace(
            event_id=f"e{usd}", converted={"EUR": Conversion(Money("EUR", eur), "0.9", "v1")}
        )
        for usd, eur in ((100, 90), (200, 181))
    ]
    ((call, members),) = settle_calls([(chain, e, False) for e in events], now, SettleParts())
    plan = json.loads(call.args[0])
    assert members == [0, 1]
    assert (plan["amt"], plan["amts"]) == (300, {"USD": 300, "EUR": 271})
