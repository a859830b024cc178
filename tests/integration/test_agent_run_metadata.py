"""The agent run reaches the audit row from W3C baggage or x-agent-run-id, tracing or not: the
servers read the metadata themselves (OpenTelemetry's interceptor runs only when tracing is)."""

from __future__ import annotations

from typing import Any

from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer
from tests.integration.test_audit import wait_for_rows
from tests.integration.vault_helpers import admin_token, mint, usd


async def _authorize(vault: Any, secret: str, *extra: tuple[str, str]) -> None:
    request = vault_pb2.AuthorizeRequest(key=secret, scope="api.call", estimated_cost=usd("0.01"))
    await vault.Authorize(request, metadata=(*bearer(secret), *extra))


async def _runs_on_rows(vault: Any, tenant: str) -> list[str]:
    page = await vault.ListAuthorizations(
        vault_pb2.ListAuthorizationsRequest(tenant_id=tenant), metadata=bearer(admin_token())
    )
    return sorted(a.agent_run_id for a in page.authorizations)


async def test_baggage_and_header_name_the_run_on_audit_rows(
    vault: Any, system: Any, tenant: str
) -> None:
    minted = await mint(vault, admin_token(), tenant)
    await _authorize(vault, minted.secret, ("baggage", "team=a,agent_run_id=run%2Fbag;p=1"))
    await _authorize(vault, minted.secret, ("x-agent-run-id", "run-header"))
    await _authorize(
        vault,
        minted.secret,
        ("x-agent-run-id", "run-loser"),
        ("baggage", "agent_run_id=run-baggage-wins"),
    )
    await _authorize(vault, minted.secret, ("baggage", "team=a"))
    await wait_for_rows(system.stores.database_url, tenant, 4)
    assert await _runs_on_rows(vault, tenant) == ["", "run-baggage-wins", "run-header", "run/bag"]
