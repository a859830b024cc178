"""The usage webhook receiver over real Metering, Postgres and Redis: Standard Webhooks
signatures (made by the reference package), the replay window, duplicates counted once, batches
of 1,000 priced exactly, the tenant throttle, refusals as JSON errors, secrets sealed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import asyncpg

from keyleash.client import AlreadyExists, MeteringClient, NotFound, PermissionDenied, VaultClient
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_usage_hooks.app import create_app
from keyleash_usage_hooks.settings import UsageHooksSettings
from tests.conftest import SERVICE_TOKEN, System
from tests.gateway.standins import serve
from tests.usage_hooks.conftest import (
    MINUTE,
    HookTenant,
    Receiver,
    batch,
    cost_micros,
    expected_micros,
    post,
    signed,
    usage,
)


async def _recorded(db: asyncpg.Connection, tenant: str) -> tuple[int, int]:
    row = await db.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount_micros), 0) AS total FROM billing_events"
        " WHERE tenant_id = $1 AND request_id LIKE 'usage-hook/%'",
        tenant,
    )
    assert row is not None
    return int(row["n"]), int(row["total"])


async def test_a_signed_event_is_priced_and_recorded(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    body = json.dumps(usage(hook_tenant.key_id, 1, agent_run_id="run-9")).encode()
    status, answer = await post(
        receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body)
    )
    assert status == 200, answer
    assert answer["accepted"] == 1 and answer["duplicates"] == 0
    (event,) = answer["events"]
    assert event["id"] == "evt-1" and event["duplicate"] is False
    assert event["amount"] == {"currency_code": "USD", "micros": cost_micros(1001, 107, 3)}
    row = await db.fetchrow(
        "SELECT model, input_tokens, output_tokens, cached_input_tokens, agent_run_id,"
        " amount_micros FROM billing_events WHERE event_id = $1::uuid",
        event["billing_event_id"],
    )
    assert row is not None
    assert tuple(row) == ("gpt-4o", 1001, 107, 3, "run-9", cost_micros(1001, 107, 3))


async def test_a_bad_signature_is_401_and_records_nothing(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    body = batch([usage(hook_tenant.key_id, 1)])
    headers = signed(hook_tenant.secret, body)
    forged = signed("whsec_" + "QUJD" * 8, body)  # another secret
    tampered = body.replace(b'"input_tokens": 1001', b'"input_tokens": 1')
    for case_headers, case_body in (
        (forged, body),
        (headers, tampered),
        (headers | {"webhook-id": "msg_other"}, body),
        (headers | {"webhook-signature": "v1,bm90IGl0"}, body),
        (headers | {"webhook-signature": "v2," + headers["webhook-signature"][3:]}, body),
    ):
        status, answer = await post(receiver.url, hook_tenant.tenant_id, case_body, case_headers)
        assert status == 401, answer
        assert answer["error"]["code"] == "INVALID_SIGNATURE"
    assert await _recorded(db, hook_tenant.tenant_id) == (0, 0)
    status, _ = await post(receiver.url, hook_tenant.tenant_id, body, headers)
    assert status == 200  # the same delivery, correctly signed, is taken


async def test_missing_headers_are_400(receiver: Receiver, hook_tenant: HookTenant) -> None:
    body = batch([usage(hook_tenant.key_id, 1)])
    headers = signed(hook_tenant.secret, body)
    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in headers.items() if k != missing}
        status, answer = await post(receiver.url, hook_tenant.tenant_id, body, partial)
        assert status == 400 and answer["error"]["code"] == "INVALID_REQUEST", answer


async def test_a_timestamp_outside_five_minutes_is_400(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    body = batch([usage(hook_tenant.key_id, 1)])
    now = datetime.now(UTC)
    for when in (now - 6 * MINUTE, now + 6 * MINUTE):
        status, answer = await post(
            receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body, when=when)
        )
        assert status == 400, answer
        assert answer["error"]["code"] == "TIMESTAMP_OUT_OF_WINDOW"
    assert await _recorded(db, hook_tenant.tenant_id) == (0, 0)
    for when in (now - 4 * MINUTE, now + 4 * MINUTE):  # inside the window: taken, once
        status, _ = await post(
            receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body, when=when)
        )
        assert status == 200
    assert await _recorded(db, hook_tenant.tenant_id) == (1, expected_micros([1]))


async def test_the_same_webhook_id_again_is_200_and_counted_once(
    receiver: Receiver,
    hook_tenant: HookTenant,
    db: asyncpg.Connection,
    admin_metering: MeteringClient,
) -> None:
    body = batch([usage(hook_tenant.key_id, i) for i in range(3)])
    first = await post(
        receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body, webhook_id="m1")
    )
    again = await post(
        receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body, webhook_id="m1")
    )
    assert first[0] == again[0] == 200
    assert (first[1]["accepted"], first[1]["duplicates"]) == (3, 0)
    assert (again[1]["accepted"], again[1]["duplicates"]) == (0, 3)
    assert [e["billing_event_id"] for e in again[1]["events"]] == [
        e["billing_event_id"] for e in first[1]["events"]
    ]
    assert await _recorded(db, hook_tenant.tenant_id) == (3, expected_micros(range(3)))
    tenant = await admin_metering.get_tenant(hook_tenant.tenant_id)
    assert tenant.spend_today.micros == expected_micros(range(3))  # settled once too


async def test_a_batch_of_1000_is_counted_exactly_once_with_exact_micros(
    receiver: Receiver,
    hook_tenant: HookTenant,
    db: asyncpg.Connection,
    admin_metering: MeteringClient,
) -> None:
    events = [usage(hook_tenant.key_id, i) for i in range(1000)]
    body = batch(events)
    status, answer = await post(
        receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body)
    )
    assert status == 200, answer
    assert answer["accepted"] == 1000 and len(answer["events"]) == 1000
    assert [e["amount"]["micros"] for e in answer["events"]] == [
        cost_micros(1000 + i, 100 + 7 * i, 3 * i) for i in range(1000)
    ]
    total = expected_micros(range(1000))
    assert await _recorded(db, hook_tenant.tenant_id) == (1000, total)
    resent = await post(receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body))
    assert resent[0] == 200 and resent[1]["duplicates"] == 1000
    assert await _recorded(db, hook_tenant.tenant_id) == (1000, total)
    spend = await admin_metering.get_spend(tenant_id=hook_tenant.tenant_id)
    assert [(t.currency_code, t.micros) for t in spend.totals] == [("USD", total)]
    assert (await admin_metering.get_tenant(hook_tenant.tenant_id)).spend_today.micros == total


async def test_more_than_1000_events_or_none_are_400(
    receiver: Receiver, hook_tenant: HookTenant
) -> None:
    for events in ([usage(hook_tenant.key_id, i) for i in range(1001)], []):
        body = batch(events)
        status, answer = await post(
            receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body)
        )
        assert status == 400 and "1 to 1000" in answer["error"]["message"], answer


async def test_the_tenant_throttle_is_honoured_and_the_usage_still_recorded(
    receiver: Receiver,
    hook_tenant: HookTenant,
    db: asyncpg.Connection,
    admin_metering: MeteringClient,
    admin_vault: VaultClient,
) -> None:
    """Usage already happened, so it is recorded even past the threshold (as RecordUsage does);
    crossing the threshold throttles the tenant, which the answer says and Authorize enforces."""
    await admin_metering.set_tenant_budget(
        tenant_id=hook_tenant.tenant_id,
        daily_threshold=money_pb2.Money(currency_code="USD", micros=10_000),
    )
    body = batch([usage(hook_tenant.key_id, i) for i in range(10)])
    status, answer = await post(
        receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body)
    )
    assert status == 200 and answer["accepted"] == 10
    assert answer["tenant"] == {"tenant_id": hook_tenant.tenant_id, "throttled": True}
    assert await _recorded(db, hook_tenant.tenant_id) == (10, expected_micros(range(10)))
    assert (await admin_metering.get_tenant(hook_tenant.tenant_id)).throttled
    minted = await admin_vault.mint_key(
        tenant_id=hook_tenant.tenant_id, agent_id="next", scopes=["llm"]
    )
    decision = await admin_vault.authorize(key=minted.secret, scope="llm")
    assert decision.decision == vault_pb2.DECISION_DENY
    assert decision.reason == vault_pb2.DENY_REASON_TENANT_THROTTLED


async def test_refusals_are_json_errors_and_record_nothing(
    receiver: Receiver,
    hook_tenant: HookTenant,
    db: asyncpg.Connection,
    admin_vault: VaultClient,
) -> None:
    other = await admin_vault.mint_key(tenant_id="other-" + hook_tenant.tenant_id, agent_id="x")
    cases = [
        ([usage(hook_tenant.key_id, 0), usage(other.key.key_id, 1)], 422, "EVENT_REJECTED"),
        ([usage(hook_tenant.key_id, 0, model="no-such-model")], 422, "EVENT_REJECTED"),
        ([usage("k_missing", 0)], 422, "EVENT_REJECTED"),
        ([usage(hook_tenant.key_id, 0, input_tokens=-1)], 400, "INVALID_REQUEST"),
        ([usage(hook_tenant.key_id, 0, surprise=1)], 400, "INVALID_REQUEST"),
        ([usage(hook_tenant.key_id, 0, tenant="someone-else")], 400, "INVALID_REQUEST"),
        ([usage(hook_tenant.key_id, 0), usage(hook_tenant.key_id, 0)], 400, "INVALID_REQUEST"),
    ]
    for events, want_status, want_code in cases:
        body = batch(events)
        status, answer = await post(
            receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body)
        )
        assert (status, answer["error"]["code"]) == (want_status, want_code), (events, answer)
        assert answer["error"]["message"]
    assert await _recorded(db, hook_tenant.tenant_id) == (0, 0)
    not_json = b"{not json"
    status, answer = await post(
        receiver.url, hook_tenant.tenant_id, not_json, signed(hook_tenant.secret, not_json)
    )
    assert status == 400 and answer["error"]["code"] == "INVALID_REQUEST"


async def test_an_event_id_reused_for_other_usage_is_409(
    receiver: Receiver, hook_tenant: HookTenant, db: asyncpg.Connection
) -> None:
    first = batch([usage(hook_tenant.key_id, 5)])
    changed = batch([usage(hook_tenant.key_id, 5, output_tokens=1)])
    assert (
        await post(receiver.url, hook_tenant.tenant_id, first, signed(hook_tenant.secret, first))
    )[0] == 200
    status, answer = await post(
        receiver.url, hook_tenant.tenant_id, changed, signed(hook_tenant.secret, changed)
    )
    assert status == 409 and answer["error"]["code"] == "EVENT_ID_REUSED", answer
    assert await _recorded(db, hook_tenant.tenant_id) == (1, expected_micros([5]))


async def test_a_tenant_without_a_secret_is_refused(receiver: Receiver, tenant: str) -> None:
    body = batch([usage("k_any", 0)])
    status, answer = await post(receiver.url, tenant, body, signed("whsec_" + "QUJD" * 8, body))
    assert status == 401 and answer["error"]["code"] == "INVALID_SIGNATURE"
    status, answer = await post(receiver.url, "bad/tenant", body, {})
    assert status in (400, 404)


async def test_a_rotated_secret_verifies_at_once_and_the_old_one_stops(
    receiver: Receiver,
    system: System,
    hook_tenant: HookTenant,
    admin_metering: MeteringClient,
    db: asyncpg.Connection,
) -> None:
    """The new secret is taken at once (a mismatch refetches the secret); the old one keeps
    verifying until the receiver's cached copy expires (secret_cache_seconds), here 0."""
    body = batch([usage(hook_tenant.key_id, 0)])
    assert (
        await post(receiver.url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body))
    )[0] == 200
    rotated = await admin_metering.rotate_usage_webhook_secret(hook_tenant.tenant_id)
    assert rotated.signing_secret.startswith("whsec_")
    assert rotated.signing_secret != hook_tenant.secret
    assert rotated.secret.name == f"tenants/{hook_tenant.tenant_id}/usageWebhookSecret"
    new = await post(
        receiver.url, hook_tenant.tenant_id, body, signed(rotated.signing_secret, body)
    )
    assert new[0] == 200 and new[1]["duplicates"] == 1
    uncached = UsageHooksSettings(
        "127.0.0.1:0",
        system.metering_address,
        SERVICE_TOKEN,
        system.vault_address,
        secret_cache_seconds=0,
    )
    runner, url = await serve(create_app(uncached))
    try:
        old = await post(url, hook_tenant.tenant_id, body, signed(hook_tenant.secret, body))
        assert old[0] == 401 and old[1]["error"]["code"] == "INVALID_SIGNATURE"
    finally:
        await runner.cleanup()
    sealed = await db.fetchval(
        "SELECT sealed_secret FROM usage_webhook_secrets WHERE tenant_id = $1",
        hook_tenant.tenant_id,
    )
    raw = rotated.signing_secret.encode()
    assert raw not in sealed and base64.b64decode(raw[6:]) not in sealed
    try:
        await admin_metering.create_usage_webhook_secret(hook_tenant.tenant_id)
        raise AssertionError("a second create must fail")
    except AlreadyExists:
        pass


async def test_only_a_service_reads_a_secret_and_only_admins_manage_them(
    hook_tenant: HookTenant, admin_metering: MeteringClient, tenant: str
) -> None:
    try:
        await admin_metering.access_usage_webhook_secret(hook_tenant.tenant_id)
        raise AssertionError("an admin must not read the secret back")
    except PermissionDenied:
        pass
    try:
        await admin_metering.rotate_usage_webhook_secret("never-" + tenant)
        raise AssertionError("rotating a missing secret must fail")
    except NotFound:
        pass
