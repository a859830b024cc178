"""AuthorizeBatch: many decisions in one message, answered in order, each the same atomic,
audited decision Authorize makes; a malformed batch is refused whole, before anything is decided."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from keyleash.client import VaultClient, agent_run
from keyleash.vault.v1 import vault_pb2
from tests.conftest import ADMIN_TOKEN, bearer
from tests.integration.test_audit import recorded, wait_for_rows
from tests.integration.test_metering import error_info
from tests.integration.vault_helpers import admin_token, authorize, cap, mint, per, usd

ALLOW, DENY = vault_pb2.DECISION_ALLOW, vault_pb2.DECISION_DENY


def request(secret: str, cost: str = "0.01", **fields: Any) -> vault_pb2.AuthorizeRequest:
    return vault_pb2.AuthorizeRequest(
        key=secret, scope=fields.pop("scope", "api.call"), estimated_cost=usd(cost), **fields
    )


async def batch(vault: Any, *requests: vault_pb2.AuthorizeRequest) -> list[Any]:
    reply = await vault.AuthorizeBatch(
        vault_pb2.AuthorizeBatchRequest(requests=list(requests)), metadata=bearer(admin_token())
    )
    return list(reply.responses)


async def test_answers_come_in_request_order_and_each_is_audited(
    vault: Any, system: Any, tenant: str
) -> None:
    free = await mint(vault, admin_token(), tenant)
    tight = await mint(vault, admin_token(), tenant, rate_limits=[per(2, 3600)])
    order = [free, tight, tight, tight, free, tight]
    answers = await batch(vault, *(request(k.secret) for k in order))
    assert [a.key_id for a in answers] == [k.key.key_id for k in order]
    assert [a.decision for a in answers] == [ALLOW, ALLOW, ALLOW, DENY, ALLOW, DENY]
    assert answers[3].reason == vault_pb2.DENY_REASON_RATE_LIMITED
    assert len({a.decision_id for a in answers}) == len(order)
    rows = await wait_for_rows(system.stores.database_url, tenant, len(order))
    assert rows == {a.decision_id: ("allow" if a.decision == ALLOW else "deny") for a in answers}


async def test_concurrent_batches_fill_a_rate_limit_and_a_cap_exactly(
    vault: Any, system: Any, tenant: str
) -> None:
    rated = await mint(vault, admin_token(), tenant, rate_limits=[per(100, 3600)])
    capped = await mint(vault, admin_token(), tenant, spend_caps=[cap("1.00")])
    batches = [[request(rated.secret), request(capped.secret, "0.03")] * 10 for _ in range(20)]
    replies = await asyncio.gather(*(batch(vault, *b) for b in batches))
    answers = [a for reply in replies for a in reply]
    by_key = {rated.key.key_id: [0, 0], capped.key.key_id: [0, 0]}
    for answer in answers:
        by_key[answer.key_id][0 if answer.decision == ALLOW else 1] += 1
    assert by_key[rated.key.key_id] == [100, 100]
    assert by_key[capped.key.key_id] == [33, 167]  # 33 * 0.03 = 0.99; a 34th would pass 1.00
    rows = await wait_for_rows(system.stores.database_url, tenant, 400)
    assert sorted(rows.values()).count("allow") == 133


async def test_a_bad_request_fails_the_whole_batch_and_decides_nothing(
    vault: Any, system: Any, tenant: str
) -> None:
    once = await mint(vault, admin_token(), tenant, rate_limits=[per(1, 3600)])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batch(
            vault, request(once.secret), request(once.secret), request(once.secret, scope="")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info.reason == "INVALID_ARGUMENT" and info.metadata["field"] == "requests[2].scope"
    allowed = await authorize(vault, once.secret, "0.01")  # the one allowed call is still there
    assert allowed.decision == ALLOW
    await asyncio.sleep(0.5)
    assert list((await recorded(system.stores.database_url, tenant)).values()) == ["allow"]


@pytest.mark.parametrize("count", [0, 1001])
async def test_an_empty_or_oversized_batch_is_invalid(vault: Any, tenant: str, count: int) -> None:
    minted = await mint(vault, admin_token(), tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batch(vault, *[request(minted.secret)] * count)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == "requests"


async def test_a_key_holder_batches_only_its_own_key(vault: Any, tenant: str) -> None:
    mine = await mint(vault, admin_token(), tenant)
    other = await mint(vault, admin_token(), tenant)
    own = vault_pb2.AuthorizeBatchRequest(requests=[request(""), request(mine.secret)])
    reply = await vault.AuthorizeBatch(own, metadata=bearer(mine.secret))
    assert [a.key_id for a in reply.responses] == [mine.key.key_id] * 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.AuthorizeBatch(
            vault_pb2.AuthorizeBatchRequest(requests=[request(mine.secret), request(other.secret)]),
            metadata=bearer(mine.secret),
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_client_batch_stamps_the_run_and_replays_by_request_id(
    system: Any, tenant: str
) -> None:
    run_id = "run-" + uuid.uuid4().hex[:8]
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as client:
        minted = await client.mint_key(
            vault_pb2.MintKeyRequest(
                tenant_id=tenant, agent_id="a", scopes=["api.call"],
                policy=vault_pb2.Policy(rate_limits=[per(3, 3600)]),
            )
        )  # fmt: skip
        ids = [f"rq-{run_id}-{n}" for n in range(4)]
        calls = [request(minted.secret, request_id=i) for i in ids]
        with agent_run(run_id):
            first = await client.authorize_batch(calls)
            again = await client.authorize_batch(calls)
        assert [a.decision for a in first] == [ALLOW, ALLOW, ALLOW, DENY]
        assert [a.decision_id for a in again[:3]] == [a.decision_id for a in first[:3]]
        assert [a.reservation_id for a in again[:3]] == [a.reservation_id for a in first[:3]]
        await wait_for_rows(system.stores.database_url, tenant, 4)
        page = await client.list_authorizations(tenant_id=tenant, agent_run_id=run_id)
    assert len([a for a in page.authorizations if a.decision == ALLOW]) == 3


async def test_a_batch_longer_than_one_pipeline_keeps_its_order(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant, rate_limits=[per(270, 3600)])
    answers = await batch(
        vault, *(request(minted.secret, request_id=f"rq-{tenant}-{n}") for n in range(300))
    )
    assert [a.decision for a in answers] == [ALLOW] * 270 + [DENY] * 30
    assert len({a.decision_id for a in answers}) == 300
