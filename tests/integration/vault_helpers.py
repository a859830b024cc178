"""Small builders shared by the vault tests."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import TYPE_CHECKING, Any

from google.protobuf import duration_pb2

from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from tests.conftest import bearer

if TYPE_CHECKING:  # mypy-protobuf's stub type for grpc.aio channels exists in the .pyi only
    from keyleash.vault.v1.vault_pb2_grpc import VaultServiceAsyncStub

# Same values as tests/conftest.py gives the servers.
PEPPER = b"test-pepper-0123456789abcdef"


def usd(amount: str) -> money_pb2.Money:
    units, _, frac = amount.partition(".")
    return money_pb2.Money(
        currency_code="USD", micros=int(units) * 1_000_000 + int((frac + "000000")[:6])
    )


def per(limit: int, seconds: int) -> vault_pb2.RateLimit:
    return vault_pb2.RateLimit(limit=limit, window=duration_pb2.Duration(seconds=seconds))


def cap(
    amount: str, window: vault_pb2.SpendCap.Window = vault_pb2.SpendCap.WINDOW_CALENDAR_DAY
) -> vault_pb2.SpendCap:
    return vault_pb2.SpendCap(limit=usd(amount), window=window)


async def mint(
    vault: VaultServiceAsyncStub,
    token: str,
    tenant: str = "",
    *,
    scopes: tuple[str, ...] = ("api.call",),
    **policy: Any,
) -> vault_pb2.MintKeyResponse:
    return await vault.MintKey(
        vault_pb2.MintKeyRequest(
            tenant_id=tenant,
            agent_id="agent-" + uuid.uuid4().hex[:6],
            label="test",
            scopes=list(scopes),
            policy=vault_pb2.Policy(**policy),
        ),
        metadata=bearer(token),
    )


async def authorize(
    vault: VaultServiceAsyncStub, secret: str, cost: str | None = None, **fields: Any
) -> vault_pb2.AuthorizeResponse:
    request = vault_pb2.AuthorizeRequest(
        key=secret, scope=fields.pop("scope", "api.call"), **fields
    )
    if cost is not None:
        request.estimated_cost.CopyFrom(usd(cost))
    return await vault.Authorize(request, metadata=bearer(secret))


def admin_token() -> str:
    return os.environ["KEYLEASH_TEST_ADMIN_TOKEN"]


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
