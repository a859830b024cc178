"""Issue #14, defect 6: an Authorize replayed with the same request_id but another payload is
ALREADY_EXISTS (REQUEST_ID_REUSED), as MintKey and Charge answer; the same payload replays."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from .test_metering import error_info
from .vault_helpers import admin_token, authorize, mint

ALLOW = 1


@pytest.mark.parametrize(
    "changed",
    [
        {"cost": "0.50"},
        {"vendor": "other"},
        {"agent_run_id": "run-x"},
        {"path": "/v2/else"},
        {"attributes": {"customer_id": "c2"}},
    ],
)
async def test_replay_with_another_payload_is_already_exists(
    vault: Any, tenant: str, changed: dict[str, Any]
) -> None:
    minted = await mint(vault, admin_token(), tenant)
    request_id = "rq-" + uuid.uuid4().hex
    first: dict[str, Any] = {"vendor": "stripe", "path": "/v1/charges", "attributes": {}}
    allowed = await authorize(vault, minted.secret, "0.10", request_id=request_id, **first)
    assert allowed.decision == ALLOW
    again = await authorize(vault, minted.secret, "0.10", request_id=request_id, **first)
    assert again.reservation_id == allowed.reservation_id  # the same call replays
    cost = changed.pop("cost", "0.10")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await authorize(vault, minted.secret, cost, request_id=request_id, **{**first, **changed})
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(caught.value).reason == "REQUEST_ID_REUSED"
