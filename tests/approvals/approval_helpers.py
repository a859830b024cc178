"""Builders shared by the approval tests."""

from __future__ import annotations

from typing import Any

from google.protobuf import duration_pb2

from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer
from tests.integration.vault_helpers import admin_token, cap, usd

WEEK = duration_pb2.Duration(seconds=7 * 24 * 3600)
ALLOW, DENY = vault_pb2.DECISION_ALLOW, vault_pb2.DECISION_DENY


async def mint_capped(
    vault: Any,
    tenant: str,
    amount: str,
    *,
    parent_secret: str = "",
    on_denial: bool = True,
) -> vault_pb2.MintKeyResponse:
    """A key with a daily cap of `amount` USD that opens approval requests on denial."""
    minted: vault_pb2.MintKeyResponse = await vault.MintKey(
        vault_pb2.MintKeyRequest(
            tenant_id="" if parent_secret else tenant,
            agent_id="agent",
            label="approvals",
            scopes=["api.call"],
            policy=vault_pb2.Policy(spend_caps=[cap(amount)], approval_on_denial=on_denial),
            ttl=WEEK,
        ),
        metadata=bearer(parent_secret or admin_token()),
    )
    return minted


async def spend(vault: Any, secret: str, amount: str, run: str = "") -> vault_pb2.AuthorizeResponse:
    request = vault_pb2.AuthorizeRequest(
        key=secret, scope="api.call", estimated_cost=usd(amount), agent_run_id=run
    )
    reply: vault_pb2.AuthorizeResponse = await vault.Authorize(request, metadata=bearer(secret))
    return reply
