"""keyleash.client over the real servers: both clients, guard(), agent_run(), typed errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from keyleash.client import (
    BudgetExhausted,
    InvalidArgument,
    KeyBlocked,
    MeteringClient,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    VaultClient,
    agent_run,
    guard,
)
from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.conftest import ADMIN_TOKEN, System

ALLOW = vault_pb2.DECISION_ALLOW


def usd(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


def per_minute(limit: int) -> vault_pb2.RateLimit:
    return vault_pb2.RateLimit(limit=limit, window=duration_pb2.Duration(seconds=60))


def daily_cap(micros: int) -> vault_pb2.SpendCap:
    return vault_pb2.SpendCap(limit=usd(micros), window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY)


@pytest.fixture
async def vault(system: System) -> AsyncIterator[VaultClient]:
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
async def metering(system: System) -> AsyncIterator[MeteringClient]:
    async with MeteringClient(system.metering_address, token=ADMIN_TOKEN) as client:
        yield client


async def mint(
    vault: VaultClient, tenant: str, token: str | None = None, **policy: Any
) -> vault_pb2.MintKeyResponse:
    return await vault.mint_key(
        tenant_id="" if token else tenant,
        agent_id="agent-" + uuid.uuid4().hex[:6],
        label="client-test",
        scopes=["api.call"],
        policy=vault_pb2.Policy(**policy),
        token=token,
    )


async def test_mint_and_authorize_allow(vault: VaultClient, tenant: str) -> None:
    minted = await mint(vault, tenant)
    assert minted.secret.startswith("vk_")
    assert minted.key.name == f"tenants/{tenant}/keys/{minted.key.key_id}"
    reply = await vault.authorize(key=minted.secret, scope="api.call", estimated_cost=usd(10))
    assert reply.decision == ALLOW and reply.key_id == minted.key.key_id and reply.reservation_id
    got = await vault.get_key(minted.key.name)
    assert got.key_id == minted.key.key_id
    valid = await vault.validate_key(minted.secret)
    assert valid.valid


async def test_guard_raises_rate_limited_with_retry_after(
    vault: VaultClient, metering: MeteringClient, tenant: str
) -> None:
    minted = await mint(vault, tenant, rate_limits=[per_minute(1)])
    first = await vault.authorize(key=minted.secret, scope="api.call")
    assert first.decision == ALLOW
    ran = False
    with pytest.raises(RateLimited) as caught:
        async with guard(
            vault, metering, key=minted.secret, scope="api.call", estimated_cost=("USD", 1000)
        ):
            ran = True
    assert not ran
    error = caught.value
    assert error.retryable is True and error.reason == "RATE_LIMITED"
    assert error.retry_after is not None and 0 < error.retry_after <= 60
    assert error.quotas[0].quota == "rate/60s" and error.quotas[0].remaining == 0


async def test_guard_raises_budget_exhausted_not_retryable(
    vault: VaultClient, metering: MeteringClient, tenant: str
) -> None:
    minted = await mint(vault, tenant, spend_caps=[daily_cap(1_000_000)])
    with pytest.raises(BudgetExhausted) as caught:
        async with guard(
            vault, metering, key=minted.secret, scope="api.call", estimated_cost=usd(2_000_000)
        ):
            pytest.fail("the block must not run")
    error = caught.value
    assert error.retryable is False and error.reason == "SPEND_CAP_EXCEEDED"
    assert error.code is None and error.quotas[0].limit == 1_000_000


async def test_guard_raises_key_blocked_for_revoked_key(
    vault: VaultClient, metering: MeteringClient, tenant: str
) -> None:
    minted = await mint(vault, tenant)
    revoked = await vault.revoke_key(minted.key.name, reason="runaway")
    assert revoked.key.state == vault_pb2.Key.STATE_REVOKED
    with pytest.raises(KeyBlocked) as caught:
        async with guard(
            vault, metering, key=minted.secret, scope="api.call", estimated_cost=usd(1)
        ):
            pass
    assert caught.value.reason == "KEY_REVOKED" and not caught.value.retryable


async def test_errors_are_decoded_into_typed_exceptions(
    vault: VaultClient, system: System, tenant: str
) -> None:
    parent = await mint(vault, tenant, spend_caps=[daily_cap(5_000_000)])
    with pytest.raises(PermissionDenied) as caught:
        await mint(vault, tenant, token=parent.secret, spend_caps=[daily_cap(5_000_001)])
    error = caught.value
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert (error.domain, error.reason) == ("vault.keyleash", "EXCEEDS_PARENT")
    assert error.metadata["field"] == "policy.spend_caps[0]"
    assert not error.retryable

    bad = vault_pb2.Policy(spend_caps=[daily_cap(1)])
    bad.spend_caps[0].limit.currency_code = "usd"
    with pytest.raises(InvalidArgument) as invalid:
        await vault.mint_key(tenant_id=tenant, agent_id="a", policy=bad)
    assert invalid.value.field_violations[0].field == "policy.spend_caps[0].limit.currency_code"

    async with VaultClient(system.vault_address, token="") as anonymous:
        with pytest.raises(Unauthenticated) as unauthenticated:
            await anonymous.get_key(parent.key.name)
    assert unauthenticated.value.reason == "UNAUTHENTICATED"


class RecordingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Remembers the method and metadata of every unary call (each retry attempt too)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        self.calls.append((method.rsplit("/", 1)[-1], dict(details.metadata or ())))
        return await continuation(details, request)


async def test_agent_run_stamps_metadata_fields_and_ledger(system: System, tenant: str) -> None:
    recorder = RecordingInterceptor()
    vault_channel = grpc.aio.insecure_channel(system.vault_address, interceptors=[recorder])
    metering_channel = grpc.aio.insecure_channel(system.metering_address, interceptors=[recorder])
    async with (
        VaultClient(channel=vault_channel, token=ADMIN_TOKEN) as vault,
        MeteringClient(channel=metering_channel, token=ADMIN_TOKEN) as metering,
    ):
        minted = await mint(vault, tenant)
        run_id = "run-" + uuid.uuid4().hex[:8]
        with agent_run(run_id):
            await vault.get_key(minted.key.name)
            async with guard(
                vault, metering, key=minted.secret, scope="api.call", estimated_cost=usd(500)
            ) as call:
                call.actual_cost = usd(400)
        stamped = [
            name for name, metadata in recorder.calls if metadata.get("x-agent-run-id") == run_id
        ]
        assert stamped == ["GetKey", "Authorize", "Charge"]
        assert all(
            f"agent_run_id={run_id}" in md.get("baggage", "") for _, md in recorder.calls[1:]
        )
        assert recorder.calls[0][1].get("x-agent-run-id") is None  # MintKey, outside the run
        assert call.charge is not None and call.charge.event.agent_run_id == run_id
        page = await metering.list_billing_events(
            filter=metering_pb2.BillingEventFilter(tenant_id=tenant, agent_run_id=run_id)
        )
    assert [e.agent_run_id for e in page.events] == [run_id]
    assert page.events[0].amount.micros == 400 and page.events[0].key_id == minted.key.key_id
    vault_channel_closed = vault_channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN
    assert not vault_channel_closed  # a passed-in channel belongs to the caller
    await vault_channel.close()
    await metering_channel.close()


async def test_guard_charges_once_when_the_block_is_retried(
    system: System, vault: VaultClient, tenant: str
) -> None:
    minted = await mint(vault, tenant, spend_caps=[daily_cap(10_000_000)])
    # Clients without a token: the guard presents the key itself (a key holder charging itself).
    async with (
        VaultClient(system.vault_address, token="") as agent_vault,
        MeteringClient(system.metering_address, token="") as agent_metering,
    ):
        handles = []
        for _ in range(3):  # e.g. the framework lost the first answer and retried the step
            async with guard(
                agent_vault,
                agent_metering,
                key=minted.secret,
                scope="api.call",
                estimated_cost=usd(500_000),
                request_id="step-7",
            ) as call:
                call.actual_cost = usd(300_000)
            handles.append(call)
    assert [h.charge.duplicate for h in handles if h.charge] == [False, True, True]
    assert len({h.reservation_id for h in handles}) == 1
    async with MeteringClient(system.metering_address, token=ADMIN_TOKEN) as metering:
        spend = await metering.get_spend(key_name=minted.key.name)
    assert [(t.currency_code, t.micros) for t in spend.totals] == [("USD", 300_000)]
    assert spend.event_count == 1


async def test_guard_releases_on_failure_and_a_retry_charges_once(
    vault: VaultClient, metering: MeteringClient, tenant: str
) -> None:
    minted = await mint(vault, tenant, spend_caps=[daily_cap(1_000_000)])
    with pytest.raises(RuntimeError, match="vendor timed out"):
        async with guard(
            vault,
            metering,
            key=minted.secret,
            scope="api.call",
            estimated_cost=usd(800_000),
            request_id="step-9",
        ):
            raise RuntimeError("vendor timed out")
    # The hold is released: another call fitting the cap only because of that is allowed.
    other = await vault.authorize(key=minted.secret, scope="api.call", estimated_cost=usd(900_000))
    assert other.decision == ALLOW
    await metering.charge(
        key_id=minted.key.key_id, reservation_id=other.reservation_id, amount=usd(0)
    )
    for _ in range(2):
        async with guard(
            vault,
            metering,
            key=minted.secret,
            scope="api.call",
            estimated_cost=usd(800_000),
            request_id="step-9",
        ) as call:
            call.actual_cost = usd(700_000)
    spend = await metering.get_spend(key_name=minted.key.name)
    assert [(t.currency_code, t.micros) for t in spend.totals] == [("USD", 700_000)]
