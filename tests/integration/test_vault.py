"""The vault over real gRPC, real Redis and real Postgres."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer
from tests.integration.vault_helpers import admin_token, authorize, cap, mint, per, usd

ALLOW, DENY = vault_pb2.DECISION_ALLOW, vault_pb2.DECISION_DENY


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    raise AssertionError("no ErrorInfo in the status")


async def test_mint_authorize_allow(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant)
    assert minted.secret.startswith("vk_")
    assert minted.key.name == f"tenants/{tenant}/keys/{minted.key.key_id}"
    assert minted.key.state == vault_pb2.Key.STATE_ACTIVE
    reply = await authorize(vault, minted.secret)
    assert reply.decision == ALLOW and reply.key_id == minted.key.key_id


async def test_malformed_secret_is_unknown_without_lookup(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant)
    typo = minted.secret[:-1] + ("A" if minted.secret[-1] != "A" else "B")
    reply = await vault.Authorize(
        vault_pb2.AuthorizeRequest(key=typo, scope="api.call"), metadata=bearer(admin_token())
    )
    assert reply.decision == DENY and reply.reason == vault_pb2.DENY_REASON_KEY_UNKNOWN


async def test_exactly_100_of_1000_concurrent_calls_on_a_100_per_minute_key(
    vault: Any, tenant: str
) -> None:
    minted = await mint(vault, admin_token(), tenant, rate_limits=[per(100, 60)])
    replies = await asyncio.gather(*(authorize(vault, minted.secret) for _ in range(1000)))
    allowed = [r for r in replies if r.decision == ALLOW]
    denied = [r for r in replies if r.decision == DENY]
    assert len(allowed) == 100
    assert {r.reason for r in denied} == {vault_pb2.DENY_REASON_RATE_LIMITED}
    limiting = denied[0].quotas[0]
    assert (limiting.quota, limiting.limit, limiting.used, limiting.remaining) == (
        "rate/60s",
        100,
        100,
        0,
    )
    assert 0 < denied[0].retry_after.ToMilliseconds() <= 60_000


async def test_spend_cap_admits_exactly_what_fits(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant, spend_caps=[cap("5.00")])
    replies = await asyncio.gather(*(authorize(vault, minted.secret, "0.10") for _ in range(200)))
    assert sum(r.decision == ALLOW for r in replies) == 50
    denied = next(r for r in replies if r.decision == DENY)
    assert denied.reason == vault_pb2.DENY_REASON_SPEND_CAP_EXCEEDED
    assert denied.quotas[0].limit == 5_000_000 and denied.quotas[0].used == 5_000_000
    assert all(r.reservation_id for r in replies if r.decision == ALLOW)


async def test_parent_cap_is_shared_by_its_children(vault: Any, tenant: str) -> None:
    parent = await mint(vault, admin_token(), tenant, spend_caps=[cap("5.00")])
    children = [await mint(vault, parent.secret) for _ in range(4)]
    replies = await asyncio.gather(
        *(authorize(vault, children[i % 4].secret, "0.10") for i in range(200))
    )
    assert sum(r.decision == ALLOW for r in replies) == 50


async def test_retried_request_id_is_decided_once(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant, rate_limits=[per(1, 60)])
    first = await authorize(vault, minted.secret, request_id="req-1")
    again = await authorize(vault, minted.secret, request_id="req-1")
    other = await authorize(vault, minted.secret, request_id="req-2")
    assert first.decision == again.decision == ALLOW
    assert first.decision_id == again.decision_id
    assert other.decision == DENY and other.reason == vault_pb2.DENY_REASON_RATE_LIMITED


@pytest.mark.parametrize(
    ("policy", "call", "reason"),
    [
        ({}, {"scope": "other.scope"}, vault_pb2.DENY_REASON_SCOPE_DENIED),
        ({"allowed_endpoints": ["GET /v1/customers/*"]}, {"method": "POST", "path": "/v1/customers/1"},
         vault_pb2.DENY_REASON_ENDPOINT_DENIED),
        ({"allowed_vendors": ["stripe"]}, {"vendor": "twilio"}, vault_pb2.DENY_REASON_VENDOR_DENIED),
        ({"constraints": [vault_pb2.AttributeConstraint(attribute="customer_id", allowed_values=["c1"])]},
         {"attributes": {"customer_id": "c2"}}, vault_pb2.DENY_REASON_CONSTRAINT_DENIED),
        ({"max_cost_per_call": usd("1.00")}, {"cost": "1.01"}, vault_pb2.DENY_REASON_PER_CALL_CAP_EXCEEDED),
        ({"max_calls": 1}, {"twice": True}, vault_pb2.DENY_REASON_CALLS_EXHAUSTED),
        ({"run_spend_cap": usd("1.00")}, {"cost": "0.60", "agent_run_id": "run-1", "twice": True},
         vault_pb2.DENY_REASON_RUN_CAP_EXCEEDED),
    ],
)  # fmt: skip
async def test_policy_denials(
    vault: Any, tenant: str, policy: dict[str, Any], call: dict[str, Any], reason: int
) -> None:
    minted = await mint(vault, admin_token(), tenant, **policy)
    call = dict(call)
    twice = call.pop("twice", False)
    if twice:
        assert (await authorize(vault, minted.secret, **call)).decision == ALLOW
    reply = await authorize(vault, minted.secret, **call)
    assert (reply.decision, reply.reason) == (DENY, reason)


async def test_allowed_endpoint_matches(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant, allowed_endpoints=["GET /v1/customers/*"])
    reply = await authorize(vault, minted.secret, method="GET", path="/v1/customers/cus_1")
    assert reply.decision == ALLOW


async def test_child_beyond_parent_is_refused(vault: Any, tenant: str) -> None:
    parent = await mint(
        vault, admin_token(), tenant, rate_limits=[per(10, 60)], spend_caps=[cap("5.00")]
    )
    attempts: list[tuple[dict[str, Any], str]] = [
        ({"scopes": ("api.call", "admin.all")}, "scopes"),
        ({"rate_limits": [per(11, 60)]}, "policy.rate_limits[0]"),
        ({"spend_caps": [cap("5.01")]}, "policy.spend_caps[0]"),
    ]
    for kwargs, field in attempts:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await mint(vault, parent.secret, **kwargs)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        info = error_info(caught.value)
        assert (info.domain, info.reason, info.metadata["field"]) == (
            "vault.keyleash",
            "EXCEEDS_PARENT",
            field,
        )
    request = vault_pb2.MintKeyRequest(agent_id="a", scopes=["api.call"])
    request.ttl.FromSeconds(400 * 24 * 3600)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.MintKey(request, metadata=bearer(parent.secret))
    assert caught.value.code() in (
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_a_child_narrows_its_parents_prefix_and_may_not_widen_it(
    vault: Any, tenant: str
) -> None:
    def only_to(*values: str) -> list[vault_pb2.AttributeConstraint]:
        return [vault_pb2.AttributeConstraint(attribute="to", allowed_values=list(values))]

    parent = await mint(vault, admin_token(), tenant, constraints=only_to("+1*"))
    child = await mint(vault, parent.secret, constraints=only_to("+1415*"))
    for to, decision in (("+14155550100", ALLOW), ("+12125550100", DENY)):
        reply = await authorize(vault, child.secret, attributes={"to": to})
        assert reply.decision == decision, to
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mint(vault, child.secret, constraints=only_to("+1*"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).metadata["field"] == "policy.constraints[to]"


async def test_revoke_cascades_and_no_allow_after_it_returns(vault: Any, tenant: str) -> None:
    parent = await mint(vault, admin_token(), tenant)
    child = await mint(vault, parent.secret)
    grandchild = await mint(vault, child.secret)
    revoked_at: list[float] = []
    late_allows = 0
    loop = asyncio.get_running_loop()

    async def hammer() -> None:
        nonlocal late_allows
        for _ in range(60):
            sent = loop.time()
            reply = await authorize(vault, grandchild.secret)
            if reply.decision == ALLOW and revoked_at and sent > revoked_at[0]:
                late_allows += 1
            await asyncio.sleep(0)

    workers = [asyncio.ensure_future(hammer()) for _ in range(8)]
    await asyncio.sleep(0.05)
    reply = await vault.RevokeKey(
        vault_pb2.RevokeKeyRequest(name=parent.key.name, reason="runaway"),
        metadata=bearer(admin_token()),
    )
    revoked_at.append(loop.time())
    await asyncio.gather(*workers)
    assert late_allows == 0
    assert reply.revoked_descendants == 2 and reply.key.state == vault_pb2.Key.STATE_REVOKED
    after = await authorize(vault, grandchild.secret)
    assert after.reason == vault_pb2.DENY_REASON_KEY_REVOKED
    got = await vault.GetKey(
        vault_pb2.GetKeyRequest(name=grandchild.key.name), metadata=bearer(admin_token())
    )
    assert got.state == vault_pb2.Key.STATE_REVOKED and got.revoke_reason == "runaway"


async def test_freeze_blocks_subtree_until_unfreeze(vault: Any, tenant: str) -> None:
    parent = await mint(vault, admin_token(), tenant)
    child = await mint(vault, parent.secret)
    await vault.FreezeKey(
        vault_pb2.FreezeKeyRequest(name=parent.key.name, reason="look"),
        metadata=bearer(admin_token()),
    )
    assert (await authorize(vault, child.secret)).reason == vault_pb2.DENY_REASON_KEY_FROZEN
    validation = await vault.ValidateKey(
        vault_pb2.ValidateKeyRequest(key=child.secret), metadata=bearer(child.secret)
    )
    assert not validation.valid and validation.reason == vault_pb2.DENY_REASON_KEY_FROZEN
    await vault.UnfreezeKey(
        vault_pb2.UnfreezeKeyRequest(name=parent.key.name), metadata=bearer(admin_token())
    )
    assert (await authorize(vault, child.secret)).decision == ALLOW


async def test_child_cannot_manage_parent_or_sibling(vault: Any, tenant: str) -> None:
    parent = await mint(vault, admin_token(), tenant)
    first, second = await mint(vault, parent.secret), await mint(vault, parent.secret)
    for target in (parent.key.name, second.key.name):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await vault.FreezeKey(
                vault_pb2.FreezeKeyRequest(name=target), metadata=bearer(first.secret)
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    other_tenant = await mint(vault, admin_token(), tenant + "-other")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.GetKey(
            vault_pb2.GetKeyRequest(name=other_tenant.key.name), metadata=bearer(first.secret)
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_update_policy_takes_effect_and_is_bounded_by_parent(vault: Any, tenant: str) -> None:
    parent = await mint(vault, admin_token(), tenant, spend_caps=[cap("5.00")])
    child = await mint(vault, parent.secret, spend_caps=[cap("1.00")])
    assert (await authorize(vault, child.secret, "2.00")).decision == DENY
    request = vault_pb2.UpdateKeyPolicyRequest(
        name=child.key.name, policy=vault_pb2.Policy(spend_caps=[cap("3.00")]), reason="approved"
    )
    request.update_mask.paths.append("spend_caps")
    updated = await vault.UpdateKeyPolicy(request, metadata=bearer(parent.secret))
    assert updated.policy.spend_caps[0].limit.micros == 3_000_000
    assert (await authorize(vault, child.secret, "2.00")).decision == ALLOW
    request.policy.spend_caps[0].limit.micros = 6_000_000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.UpdateKeyPolicy(request, metadata=bearer(parent.secret))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.UpdateKeyPolicy(request, metadata=bearer(child.secret))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_mint_is_idempotent_by_request_id(vault: Any, tenant: str) -> None:
    request = vault_pb2.MintKeyRequest(
        tenant_id=tenant, agent_id="a", scopes=["x"], request_id="mint-1"
    )
    first = await vault.MintKey(request, metadata=bearer(admin_token()))
    again = await vault.MintKey(request, metadata=bearer(admin_token()))
    assert (first.key.key_id, first.secret) == (again.key.key_id, again.secret)
    request.label = "different"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.MintKey(request, metadata=bearer(admin_token()))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_credentials_are_required(vault: Any, tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.MintKey(vault_pb2.MintKeyRequest(tenant_id=tenant, agent_id="a"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(caught.value).domain == "vault.keyleash"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.MintKey(
            vault_pb2.MintKeyRequest(tenant_id=tenant, agent_id="a"), metadata=bearer("nope")
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_bad_input_names_the_field(vault: Any, tenant: str) -> None:
    request = vault_pb2.MintKeyRequest(
        tenant_id=tenant, agent_id="a", policy=vault_pb2.Policy(spend_caps=[cap("1.00")])
    )
    request.policy.spend_caps[0].limit.currency_code = "usd"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.MintKey(request, metadata=bearer(admin_token()))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["field"] == "policy.spend_caps[0].limit.currency_code"


async def test_list_keys_paginates_within_subtree(vault: Any, tenant: str) -> None:
    parent = await mint(vault, admin_token(), tenant)
    for _ in range(5):
        await mint(vault, parent.secret)
    await mint(vault, admin_token(), tenant)  # not in the parent's subtree
    seen: list[str] = []
    token = ""
    while True:
        page = await vault.ListKeys(
            vault_pb2.ListKeysRequest(page_size=2, page_token=token), metadata=bearer(parent.secret)
        )
        seen.extend(k.key_id for k in page.keys)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 6 and len(set(seen)) == 6
    everything = await vault.ListKeys(
        vault_pb2.ListKeysRequest(tenant_id=tenant), metadata=bearer(admin_token())
    )
    assert len(everything.keys) == 7


async def test_authorize_stream_answers_in_order(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant, rate_limits=[per(30, 60)])
    requests = [
        vault_pb2.AuthorizeRequest(key=minted.secret, scope="api.call", request_id=f"s-{i}")
        for i in range(50)
    ]
    call = vault.AuthorizeStream(iter(requests), metadata=bearer(minted.secret))
    replies = [r async for r in call]
    assert len(replies) == 50
    assert [r.decision for r in replies] == [ALLOW] * 30 + [DENY] * 20


async def test_expired_key_is_denied_and_cannot_mint(vault: Any, tenant: str) -> None:
    request = vault_pb2.MintKeyRequest(tenant_id=tenant, agent_id="a", scopes=["api.call"])
    request.ttl.FromSeconds(1)
    minted = await vault.MintKey(request, metadata=bearer(admin_token()))
    await asyncio.sleep(1.2)
    assert (await authorize(vault, minted.secret)).reason == vault_pb2.DENY_REASON_KEY_EXPIRED
    got = await vault.GetKey(
        vault_pb2.GetKeyRequest(name=minted.key.name), metadata=bearer(admin_token())
    )
    assert got.state == vault_pb2.Key.STATE_EXPIRED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mint(vault, minted.secret)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_service_token_authorizes_but_cannot_mint(vault: Any, tenant: str) -> None:
    from tests.conftest import SERVICE_TOKEN

    minted = await mint(vault, admin_token(), tenant)
    reply = await vault.Authorize(
        vault_pb2.AuthorizeRequest(key=minted.secret, scope="api.call"),
        metadata=bearer(SERVICE_TOKEN),
    )
    assert reply.decision == ALLOW
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mint(vault, SERVICE_TOKEN, tenant)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    other = await mint(vault, admin_token(), tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vault.Authorize(
            vault_pb2.AuthorizeRequest(key=other.secret, scope="api.call"),
            metadata=bearer(minted.secret),
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_validate_key_consumes_nothing(vault: Any, tenant: str) -> None:
    minted = await mint(vault, admin_token(), tenant, rate_limits=[per(1, 60)])
    for _ in range(3):
        reply = await vault.ValidateKey(
            vault_pb2.ValidateKeyRequest(key=minted.secret), metadata=bearer(minted.secret)
        )
        assert reply.valid and reply.key.key_id == minted.key.key_id
    assert (await authorize(vault, minted.secret)).decision == ALLOW
    unknown = await vault.ValidateKey(
        vault_pb2.ValidateKeyRequest(key="vk_nope"), metadata=bearer(minted.secret)
    )
    assert not unknown.valid and unknown.reason == vault_pb2.DENY_REASON_KEY_UNKNOWN


async def test_depth_limit(vault: Any, tenant: str) -> None:
    holder = await mint(vault, admin_token(), tenant)
    for _ in range(8):
        holder = await mint(vault, holder.secret)
    assert holder.key.depth == 8
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await mint(vault, holder.secret)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "DEPTH_EXCEEDED"
