"""ListAuthorizations: the recorded decisions a caller may read, either time order, one page.

An admin or a service reads any tenant's; a key holder only its own subtree's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg

from keyleash_core import page_tokens
from keyleash_core.auth import KEY, SERVICE, Credential
from keyleash_core.errors import InvalidArgument, PermissionDenied
from vault_service.audit.queries import AuthorizationFilter, list_authorizations
from vault_service.usecases.permissions import ADMIN_VIEW, Permissions


class DecisionLog:
    def __init__(self, pool: asyncpg.Pool, permissions: Permissions) -> None:
        self._pool = pool
        self._permissions = permissions

    async def list_authorizations(
        self,
        credential: Credential,
        spec: AuthorizationFilter,
        key_name: str,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Any], str]:
        """Recorded decisions visible to the caller, in the filter's order, one page."""
        if credential.kind == KEY:
            me = (await self._permissions.caller_chain(credential))[0]
            if spec.tenant_id and spec.tenant_id != me.tenant_id:
                raise PermissionDenied("a key holder reads only its own tenant's decisions")
            spec = replace(spec, tenant_id=me.tenant_id, within_key_id=me.key_id)
        elif not spec.tenant_id:
            raise InvalidArgument("tenant_id", "required")
        if key_name:
            record = await self._permissions.key_by_name(
                credential if credential.kind != SERVICE else ADMIN_VIEW, key_name, allow_self=True
            )
            if record.tenant_id != spec.tenant_id:
                raise InvalidArgument("key_name", "not a key of tenant_id")
            if spec.within_key_id and spec.within_key_id not in record.key_path:
                raise PermissionDenied(f"{key_name} is outside the caller's subtree")
            spec = replace(spec, within_key_id=record.key_id)
        size = page_size or 100
        tag = page_tokens.filter_tag("authorizations", spec)
        rows = await list_authorizations(
            self._pool, spec, page_tokens.decode_time_position(page_token, tag), size + 1
        )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            token = page_tokens.encode_time_position(
                last["decision_time"], last["decision_id"], tag
            )
        return rows, token
