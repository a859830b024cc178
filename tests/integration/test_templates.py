"""Policy templates and ProvisionAgent over real gRPC and stores (issue #20, part 3): shipped and
tenant templates, MintKey from a template where explicit fields only narrow, and an agent
provisioned with one vendor-locked key per vendor, all or none, idempotent by request_id."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keyleash.client import VaultClient
from keyleash.client.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2 as V
from tests.conftest import ADMIN_TOKEN, System
from tests.integration.test_cli import Cli, kl

__all__ = ["kl"]  # the CLI fixture, shared with test_cli

USD = 1_000_000


def usd(micros: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", micros=micros)


@pytest.fixture
async def admin(system: System) -> AsyncIterator[VaultClient]:
    async with VaultClient(system.vault_address, token=ADMIN_TOKEN) as vault:
        yield vault


async def test_shipped_templates_are_listed_first_and_read_only(
    admin: VaultClient, tenant: str
) -> None:
    page = await admin.list_policy_templates(tenant_id=tenant)
    names = [t.name for t in page.templates]
    assert "policyTemplates/daily-500usd" in names and "policyTemplates/agent-per-vendor" in names
    daily = await admin.get_policy_template("policyTemplates/daily-500usd")
    assert daily.policy.spend_caps[0].limit.micros == 500 * USD
    assert daily.policy.spend_caps[0].window == V.SpendCap.WINDOW_ROLLING_24H
    with pytest.raises(PermissionDenied):
        await admin.delete_policy_template("policyTemplates/daily-500usd")
    with pytest.raises(AlreadyExists) as taken:
        await admin.create_policy_template(
            tenant_id=tenant, template_id="daily-500usd", template=V.PolicyTemplate()
        )
    assert taken.value.reason == "TEMPLATE_EXISTS"


async def test_a_key_from_a_template_may_narrow_it_but_never_widen_it(
    admin: VaultClient, tenant: str
) -> None:
    template = V.PolicyTemplate(
        display_name="support bot",
        scopes=["api.call", "stripe.refunds.write"],
        policy=V.Policy(
            spend_caps=[V.SpendCap(limit=usd(50 * USD), window=V.SpendCap.WINDOW_CALENDAR_DAY)],
            allowed_vendors=["stripe", "resend"],
        ),
    )
    template.ttl.FromSeconds(3600)
    created = await admin.create_policy_template(
        tenant_id=tenant, template_id="support", template=template, request_id="t-" + tenant
    )
    assert created.name == f"tenants/{tenant}/policyTemplates/support"
    again = await admin.create_policy_template(
        tenant_id=tenant, template_id="support", template=template, request_id="t-" + tenant
    )
    assert again.name == created.name  # the retry answers the same template

    plain = await admin.mint_key(tenant_id=tenant, agent_id="bot", template=created.name)
    assert list(plain.key.scopes) == ["api.call", "stripe.refunds.write"]
    assert plain.key.policy.spend_caps[0].limit.micros == 50 * USD
    assert plain.key.expire_time.seconds - plain.key.create_time.seconds == 3600

    narrow = await admin.mint_key(
        tenant_id=tenant, agent_id="bot", template=created.name, scopes=["api.call"],
        policy=V.Policy(
            spend_caps=[V.SpendCap(limit=usd(5 * USD), window=V.SpendCap.WINDOW_CALENDAR_DAY)],
            allowed_vendors=["stripe"],
        ),
    )  # fmt: skip
    assert narrow.key.policy.spend_caps[0].limit.micros == 5 * USD
    assert list(narrow.key.policy.allowed_vendors) == ["stripe"]
    for wider, field in (
        ({"scopes": ["admin.all"]}, "scopes"),
        ({"policy": V.Policy(spend_caps=[V.SpendCap(limit=usd(51 * USD),
                                                    window=V.SpendCap.WINDOW_CALENDAR_DAY)])},
         "policy.spend_caps[0]"),
        ({"policy": V.Policy(allowed_vendors=["aws"])}, "policy.allowed_vendors"),
    ):  # fmt: skip
        with pytest.raises(PermissionDenied) as caught:
            await admin.mint_key(tenant_id=tenant, agent_id="bot", template=created.name, **wider)
        assert caught.value.reason == "EXCEEDS_TEMPLATE"
        assert caught.value.metadata["field"] == field
    with pytest.raises(NotFound):
        await admin.mint_key(
            tenant_id=tenant, agent_id="bot", template=f"tenants/{tenant}/policyTemplates/none"
        )


async def test_provisioning_mints_one_vendor_locked_key_per_vendor_once(
    admin: VaultClient, system: System, tenant: str
) -> None:
    request_id = "prov-" + uuid.uuid4().hex
    provisioned = await admin.provision_agent(
        tenant_id=tenant, agent_id="coder", template="policyTemplates/agent-per-vendor",
        label="coder agent", request_id=request_id,
    )  # fmt: skip
    keys = provisioned.keys
    vendors = [list(k.key.policy.allowed_vendors) for k in keys]
    assert vendors == [["openai"], ["anthropic"], ["aws"], ["github"], ["stripe"], ["twilio"]]
    caps = {k.key.policy.allowed_vendors[0]: [c.limit.micros for c in k.key.policy.spend_caps]
            for k in keys}  # fmt: skip
    # The vendor's monthly cap replaces the template's 10,700 for the same window (it is lower).
    assert caps == {"openai": [2_000 * USD], "anthropic": [2_000 * USD], "aws": [5_000 * USD],
                    "github": [500 * USD], "stripe": [1_000 * USD], "twilio": [200 * USD]}  # fmt: skip
    assert len({k.secret for k in keys}) == 6

    # Each key works for its own vendor only: a leak of one touches no other.
    async with VaultClient(system.vault_address, token=keys[0].secret) as openai_key:
        allowed = await openai_key.authorize(scope="openai.chat", vendor="openai",
                                             estimated_cost=usd(USD))  # fmt: skip
        other = await openai_key.authorize(scope="openai.chat", vendor="aws",
                                           estimated_cost=usd(USD))  # fmt: skip
    assert allowed.decision == V.DECISION_ALLOW
    assert other.reason == V.DENY_REASON_VENDOR_DENIED

    again = await admin.provision_agent(
        tenant_id=tenant, agent_id="coder", template="policyTemplates/agent-per-vendor",
        label="coder agent", request_id=request_id,
    )  # fmt: skip
    assert [(k.key.name, k.secret) for k in again.keys] == [(k.key.name, k.secret) for k in keys]
    with pytest.raises(AlreadyExists):
        await admin.provision_agent(tenant_id=tenant, agent_id="other",
                                    template="policyTemplates/agent-per-vendor",
                                    request_id=request_id)  # fmt: skip
    listed = await admin.list_keys(tenant_id=tenant)
    assert len(listed.keys) == 6  # minted once


async def test_provisioning_is_all_or_none(admin: VaultClient, tenant: str) -> None:
    # A key holder provisions children: its cap of 100 USD a month cannot hold the template's
    # 10,700, so not one of the six keys is minted.
    holder = await admin.mint_key(
        tenant_id=tenant, agent_id="lead", scopes=["openai.chat", "anthropic.messages"],
        policy=V.Policy(spend_caps=[V.SpendCap(limit=usd(100 * USD),
                                               window=V.SpendCap.WINDOW_CALENDAR_MONTH)]),
    )  # fmt: skip
    with pytest.raises(PermissionDenied) as refused:
        await admin.provision_agent(
            agent_id="sub", template="policyTemplates/agent-per-vendor", token=holder.secret
        )
    assert refused.value.reason in ("EXCEEDS_PARENT", "EXCEEDS_TEMPLATE")
    listed = await admin.list_keys(tenant_id=tenant)
    assert [k.agent_id for k in listed.keys] == ["lead"]
    with pytest.raises(InvalidArgument):
        await admin.provision_agent(
            tenant_id=tenant, agent_id="x", template="policyTemplates/daily-500usd"
        )


async def test_the_cli_lists_creates_mints_from_and_provisions(
    kl: Cli, tmp_path: Path, tenant: str
) -> None:
    listed = await kl("templates", "list", "--tenant", tenant)
    assert listed.code == 0 and "policyTemplates/agent-per-vendor" in listed.out
    assert "500.000000 USD/rolling_24h" in listed.out
    body = tmp_path / "t.json"
    body.write_text(json.dumps({"scopes": ["api.call"], "policy": {"spendCaps": [
        {"limit": {"currencyCode": "USD", "micros": "3000000"}, "window": "WINDOW_CALENDAR_DAY"}]}}))  # fmt: skip
    created = await kl(
        "templates", "create", "--tenant", tenant, "--id", "ops", "--file", str(body)
    )
    assert created.code == 0 and created.out.strip() == f"tenants/{tenant}/policyTemplates/ops"
    minted = await kl("keys", "mint", "--tenant", tenant, "--agent", "a", "--json",
                      "--template", "ops", "--cap", "1.00USD/day")  # the tenant's, by id  # fmt: skip
    assert minted.code == 0, minted.err
    assert minted.json()["key"]["policy"]["spend_caps"][0]["limit"]["micros"] == "1000000"
    wider = await kl("keys", "mint", "--tenant", tenant, "--agent", "a",
                     "--template", created.out.strip(), "--cap", "9.00USD/day")  # fmt: skip
    assert wider.code != 0 and "EXCEEDS_TEMPLATE" in wider.err
    provisioned = await kl("agents", "provision", "--tenant", tenant, "--agent", "coder",
                           "--template", "agent-per-vendor", "--request-id", "p1")  # fmt: skip
    assert provisioned.code == 0, provisioned.err
    assert provisioned.out.count("vk_") == 6 and "2000.000000 USD/calendar_month" in provisioned.out
    bad = await kl("templates", "create", "--tenant", tenant, "--id", "x", "--file", "/nonexistent")
    assert bad.code == 2 and "--file" in bad.err
