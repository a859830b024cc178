"""Usage events naming an agent instead of a key: resolved over the Vault's ListKeys (agent_id
filter, service credential) to the agent's one active root-most key of the tenant, recorded
against it; an unknown, ambiguous or keyless agent refuses the delivery (422) naming the event."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from keyleash.client import InvalidArgument, PermissionDenied, VaultClient
from keyleash.client.usage_hooks import (
    SyncUsageWebhookSender,
    UsageEvent,
    UsageWebhookError,
    UsageWebhookSender,
)
from tests.conftest import SERVICE_TOKEN, System
from tests.usage_hooks.conftest import (
    HookTenant,
    Receiver,
    batch,
    cost_micros,
    expected_micros,
    post,
    signed,
    usage,
)


def by_agent(agent_id: str, i: int, **extra: Any) -> dict[str, Any]:
    """Event i of usage(), naming the agent instead of the key."""
    event = usage("", i, agent_id=agent_id, **extra)
    del event["key_id"]
    return event


async def _keys_of_events(db: asyncpg.Connection, tenant: str) -> dict[str, tuple[str, int]]:
    rows = await db.fetch(
        "SELECT request_id, key_id, amount_micros FROM billing_events WHERE tenant_id = $1",
        tenant,
    )
    return {r["request_id"].rsplit("/", 1)[1]: (r["key_id"], r["amount_micros"]) for r in rows}


async def _deliver(receiver: Receiver, hook: HookTenant, events: list[dict[str, Any]]) -> Any:
    body = batch(events)
    return await post(receiver.url, hook.tenant_id, body, signed(hook.secret, body))


async def test_an_agent_event_records_against_the_agents_key(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    status, answer = await _deliver(receiver, hook_tenant, [by_agent("llm-agent", 1)])
    assert status == 200, answer
    assert answer["events"][0]["amount"]["micros"] == cost_micros(1001, 107, 3)
    assert await _keys_of_events(db, hook_tenant.tenant_id) == {
        "evt-1": (hook_tenant.key_id, cost_micros(1001, 107, 3))
    }


async def test_a_batch_mixes_key_and_agent_events_and_counts_each_once(
    receiver: Receiver,
    hook_tenant: HookTenant,
    admin_vault: VaultClient,
    db: asyncpg.Connection,
) -> None:
    other = await admin_vault.mint_key(tenant_id=hook_tenant.tenant_id, agent_id="summarizer")
    other_key = other.key.key_id
    events = [
        usage(hook_tenant.key_id, 0),
        by_agent("summarizer", 1),
        by_agent("llm-agent", 2),
        usage(other_key, 3),
        by_agent("summarizer", 4, agent_run_id="run-4"),
    ]
    status, answer = await _deliver(receiver, hook_tenant, events)
    assert status == 200, answer
    assert (answer["accepted"], answer["duplicates"]) == (5, 0)
    again = await _deliver(receiver, hook_tenant, events)
    assert again[0] == 200 and again[1]["duplicates"] == 5
    owners = [hook_tenant.key_id, other_key, hook_tenant.key_id, other_key, other_key]
    assert await _keys_of_events(db, hook_tenant.tenant_id) == {
        f"evt-{i}": (owner, expected_micros([i])) for i, owner in enumerate(owners)
    }


async def test_an_unknown_agent_refuses_the_delivery_naming_the_event(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    events = [usage(hook_tenant.key_id, 0), by_agent("nobody", 1), by_agent("nobody", 2)]
    status, answer = await _deliver(receiver, hook_tenant, events)
    assert status == 422, answer
    assert answer["error"]["code"] == "EVENT_REJECTED"
    message = answer["error"]["message"]
    assert message.startswith("events[1].agent_id: agent 'nobody' has no key in tenant")
    assert await _keys_of_events(db, hook_tenant.tenant_id) == {}


async def test_an_agent_resolves_to_its_root_most_active_key_or_is_refused(
    receiver: Receiver,
    hook_tenant: HookTenant,
    admin_vault: VaultClient,
    db: asyncpg.Connection,
) -> None:
    tenant = hook_tenant.tenant_id
    root = await admin_vault.mint_key(tenant_id=tenant, agent_id="planner")
    await admin_vault.mint_key(agent_id="planner", token=root.secret)  # a child: deeper
    status, answer = await _deliver(receiver, hook_tenant, [by_agent("planner", 1)])
    assert status == 200, answer
    assert (await _keys_of_events(db, tenant))["evt-1"][0] == root.key.key_id

    sibling = await admin_vault.mint_key(tenant_id=tenant, agent_id="planner")
    status, answer = await _deliver(receiver, hook_tenant, [by_agent("planner", 2)])
    assert status == 422, answer
    message = answer["error"]["message"]
    assert message.startswith("events[0].agent_id: agent 'planner' has 2 active keys at depth 0")
    assert root.key.key_id in message and sibling.key.key_id in message
    assert message.endswith("name the key_id instead")

    await admin_vault.revoke_key(name=sibling.key.name, reason="test")
    status, answer = await _deliver(receiver, hook_tenant, [by_agent("planner", 3)])
    assert status == 200, answer  # revoked at once: nothing cached between deliveries
    assert (await _keys_of_events(db, tenant))["evt-3"][0] == root.key.key_id


async def test_an_agent_whose_keys_are_all_frozen_or_revoked_is_refused(
    receiver: Receiver,
    hook_tenant: HookTenant,
    admin_vault: VaultClient,
    db: asyncpg.Connection,
) -> None:
    tenant = hook_tenant.tenant_id
    frozen = await admin_vault.mint_key(tenant_id=tenant, agent_id="paused")
    await admin_vault.freeze_key(name=frozen.key.name, reason="test")
    revoked = await admin_vault.mint_key(tenant_id=tenant, agent_id="paused")
    await admin_vault.revoke_key(name=revoked.key.name, reason="test")
    status, answer = await _deliver(receiver, hook_tenant, [by_agent("paused", 1)])
    assert status == 422, answer
    assert answer["error"]["message"] == (
        f"events[0].agent_id: agent 'paused' has no active key in tenant {tenant} (2 frozen, "
        "revoked or expired); name the key_id to record against one of them"
    )
    # Naming the key records against it, as before (the usage happened).
    status, answer = await _deliver(receiver, hook_tenant, [usage(frozen.key.key_id, 2)])
    assert status == 200, answer
    assert set(await _keys_of_events(db, tenant)) == {"evt-2"}


async def test_an_agent_of_another_tenant_is_not_found_in_this_one(
    receiver: Receiver, hook_tenant: HookTenant, admin_vault: VaultClient
) -> None:
    elsewhere = "t-" + uuid.uuid4().hex[:12]
    await admin_vault.mint_key(tenant_id=elsewhere, agent_id="roamer")
    status, answer = await _deliver(receiver, hook_tenant, [by_agent("roamer", 1)])
    assert status == 422, answer
    assert (
        "agent 'roamer' has no key in tenant " + hook_tenant.tenant_id
        in (answer["error"]["message"])
    )


@pytest.mark.parametrize(
    "fields",
    [{"key_id": "k", "agent_id": "a"}, {}, {"key_id": "", "agent_id": ""}],
    ids=["both", "neither", "both-empty"],
)
async def test_an_event_names_exactly_one_of_key_and_agent(
    receiver: Receiver, hook_tenant: HookTenant, fields: dict[str, str]
) -> None:
    event = {"id": "evt-1", "model": "gpt-4o", **fields}
    body = json.dumps({"events": [usage(hook_tenant.key_id, 0), event]}).encode()
    status, answer = await post(
        receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body)
    )
    assert status == 400, answer
    assert answer["error"] == {
        "type": "keyleash_usage_hook_error",
        "code": "INVALID_REQUEST",
        "message": "events[1]: exactly one of key_id or agent_id is required",
    }


async def test_the_senders_send_agent_events_and_refuse_ambiguous_ones_unsent(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    events: list[UsageEvent] = [
        {"id": "a-1", "agent_id": "llm-agent", "model": "gpt-4o", "input_tokens": 1000},
        {"id": "k-2", "key_id": hook_tenant.key_id, "model": "gpt-4o", "output_tokens": 100},
    ]
    async with UsageWebhookSender(receiver.url, hook_tenant.tenant_id, hook_tenant.secret) as s:
        sent = await s.send(events)
        with pytest.raises(UsageWebhookError) as refused:
            await s.send([{"id": "x", "model": "gpt-4o", "key_id": "k", "agent_id": "a"}])
    assert sent.accepted == 2 and refused.value.status == 0
    assert refused.value.code == "INVALID_REQUEST"

    def send_blocking() -> int:
        with SyncUsageWebhookSender(
            receiver.url, hook_tenant.tenant_id, hook_tenant.secret
        ) as sender:
            return sender.send({"id": "a-3", "agent_id": "llm-agent", "model": "gpt-4o"}).accepted

    assert await asyncio.to_thread(send_blocking) == 1
    recorded = await _keys_of_events(db, hook_tenant.tenant_id)
    assert {event: key for event, (key, _) in recorded.items()} == {
        "a-1": hook_tenant.key_id,
        "k-2": hook_tenant.key_id,
        "a-3": hook_tenant.key_id,
    }


async def test_the_vault_lists_an_agents_keys_for_the_service_credential(
    system: System, hook_tenant: HookTenant, admin_vault: VaultClient
) -> None:
    tenant = hook_tenant.tenant_id
    minted = [await admin_vault.mint_key(tenant_id=tenant, agent_id="lister") for _ in range(3)]
    async with VaultClient(system.vault_address, token=SERVICE_TOKEN) as service:
        listed = [
            k.key_id
            async for k in service.iter_keys(tenant_id=tenant, agent_id="lister", page_size=2)
        ]
        assert listed == [m.key.key_id for m in minted]
        page = await service.list_keys(tenant_id=tenant, agent_id="llm-agent")
        assert [k.key_id for k in page.keys] == [hook_tenant.key_id]
        first = await service.list_keys(tenant_id=tenant, agent_id="lister", page_size=2)
        with pytest.raises(InvalidArgument):
            await service.list_keys(
                tenant_id=tenant, agent_id="llm-agent", page_token=first.next_page_token
            )
    # A key holder still lists only its own subtree, and filters by agent there too.
    holder = minted[0].secret
    mine = await admin_vault.list_keys(agent_id="lister", token=holder)
    assert [k.key_id for k in mine.keys] == [minted[0].key.key_id]
    with pytest.raises(PermissionDenied):
        await admin_vault.list_keys(tenant_id="t-elsewhere", token=holder)
