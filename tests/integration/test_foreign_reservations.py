"""Issue #14, defect 1: Charge settles only a reservation the charging key placed. One placed
by another key of the tenant, by another tenant's key, or never placed is FAILED_PRECONDITION
(RESERVATION_NOT_FOUND), whoever calls; the ledger never shows foreign amounts as a key's cost."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
import pytest

from keyleash.vault.v1 import vault_pb2
from keyleash_core.redis import keyspace
from tests.conftest import bearer

from .test_audit import wait_for_rows
from .test_metering import ALLOW, admin, authorize, charge, error_info, mint, service


async def refused(metering: Any, key_id: str, reservation_id: str, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await charge(metering, key_id, "0.70", reservation_id=reservation_id, token=token)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "RESERVATION_NOT_FOUND"


async def settled_costs(vault: Any, key_name: str, tenant: str) -> list[int]:
    page = await vault.ListAuthorizations(
        vault_pb2.ListAuthorizationsRequest(tenant_id=tenant, key_name=key_name),
        metadata=bearer(admin()),
    )
    return [a.settled_cost.micros for a in page.authorizations if a.decision == ALLOW]


async def test_a_key_settles_only_reservations_it_placed(
    vault: Any, metering: Any, tenant: str, system: Any
) -> None:
    holder = await mint(vault, admin(), tenant)
    sibling = await mint(vault, admin(), tenant)
    stranger = await mint(vault, admin(), "other-" + uuid.uuid4().hex[:8])
    held = await authorize(vault, holder.secret, "0.50")
    assert held.decision == ALLOW and held.reservation_id
    never = "r_" + "0" * 24
    for key, token in (
        (sibling, sibling.secret),
        (sibling, service()),
        (sibling, admin()),
        (stranger, stranger.secret),
        (stranger, service()),
        (holder, service()),  # the holder itself, naming a reservation nobody placed
    ):
        reservation = never if key is holder else held.reservation_id
        await refused(metering, key.key.key_id, reservation, token)
    await charge(metering, holder.key.key_id, "0.30", reservation_id=held.reservation_id)
    await wait_for_rows(system.stores.database_url, tenant, 1)
    assert await settled_costs(vault, holder.key.name, tenant) == [300_000]


async def test_a_reservation_redis_lost_is_the_placing_keys_by_the_audit(
    vault: Any, metering: Any, tenant: str, system: Any, redis_client: Any
) -> None:
    """Redis lost the hold (expiry, flush): the audit's ALLOW of this key for it decides."""
    holder = await mint(vault, admin(), tenant)
    sibling = await mint(vault, admin(), tenant)
    held = await authorize(vault, holder.secret, "0.50")
    await wait_for_rows(system.stores.database_url, tenant, 1)
    await redis_client.delete(keyspace.reservation(tenant, held.reservation_id))
    await refused(metering, sibling.key.key_id, held.reservation_id, service())
    settled = await charge(metering, holder.key.key_id, "0.40", reservation_id=held.reservation_id)
    assert settled.event.amount.micros == 400_000


async def test_the_ledger_joins_on_key_and_reservation(
    vault: Any, metering: Any, tenant: str, system: Any
) -> None:
    """A foreign event recorded before the refusal existed is not the decision's cost."""
    holder = await mint(vault, admin(), tenant)
    sibling = await mint(vault, admin(), tenant)
    held = await authorize(vault, holder.secret, "0.50")
    await charge(metering, holder.key.key_id, "0.20", reservation_id=held.reservation_id)
    con = await asyncpg.connect(system.stores.database_url)
    try:
        await con.execute(
            """INSERT INTO billing_events (event_id, request_id, tenant_id, key_id, key_path,
                   kind, currency_code, amount_micros, reservation_id, occur_time)
               VALUES ($1, $2, $3, $4, $5, 'charge', 'USD', 900000, $6, now())""",
            uuid.uuid4(), "legacy-" + tenant, tenant, sibling.key.key_id,
            [sibling.key.key_id], held.reservation_id,
        )  # fmt: skip
    finally:
        await con.close()
    await wait_for_rows(system.stores.database_url, tenant, 1)
    assert await settled_costs(vault, holder.key.name, tenant) == [200_000]
