"""Authorize → the caller's block → Charge, as a context manager (see keyleash.client.guard)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from keyleash.client._async.metering import MeteringClient
from keyleash.client._async.vault import VaultClient
from keyleash.client._guarded_call import GuardHandle, MoneyLike, bearer_for, new_call
from keyleash.client.errors import raise_for_decision


@asynccontextmanager
async def guard(
    vault: VaultClient,
    metering: MeteringClient,
    *,
    key: str,
    scope: str,
    estimated_cost: MoneyLike,
    vendor: str = "",
    method: str = "",
    path: str = "",
    attributes: Mapping[str, str] | None = None,
    request_id: str | None = None,
    timeout: float | None = None,
) -> AsyncIterator[GuardHandle]:
    """Authorize, run the block, then Charge the actual cost (zero when the block fails)."""
    call = new_call(key, scope, estimated_cost, vendor, method, path, attributes, request_id)
    decision = await vault.authorize(
        call.authorize_request(), timeout=timeout, token=bearer_for(vault, key)
    )
    handle = call.handle(raise_for_decision(decision))
    try:
        yield handle
    except GeneratorExit:  # closed without running the block's exit: nothing to settle here
        raise
    except BaseException as failure:
        release = call.release_request(handle)
        if release is not None:
            try:
                await metering.charge(release, timeout=timeout, token=bearer_for(metering, key))
            except Exception as release_error:  # the block's failure is what the caller needs
                failure.add_note(f"keyleash: releasing the hold failed: {release_error}")
        raise
    handle.charge = await metering.charge(
        call.charge_request(handle), timeout=timeout, token=bearer_for(metering, key)
    )
