"""ListKeyEvents: a key's recorded changes (mint, freeze, unfreeze, policy, revoke), oldest
first, one page. An admin reads any key's; a key holder its own and its descendants'."""

from __future__ import annotations

from typing import Any

from keyleash_core import page_tokens
from keyleash_core.auth import Credential
from keyleash_core.errors import InvalidArgument
from vault_service.store.registry import KeyRegistry
from vault_service.usecases.permissions import Permissions


class KeyHistory:
    def __init__(self, registry: KeyRegistry, permissions: Permissions) -> None:
        self._registry = registry
        self._permissions = permissions

    async def list_events(
        self, credential: Credential, name: str, page_size: int, page_token: str
    ) -> tuple[list[Any], str]:
        record = await self._permissions.key_by_name(credential, name, allow_self=True)
        tag = page_tokens.filter_tag("key_events", record.key_id)
        position = page_tokens.decode(page_token, tag)
        after = 0
        if position is not None:
            if len(position) != 1 or not isinstance(position[0], int):
                raise InvalidArgument("page_token", "not a token this service issued")
            after = position[0]
        size = page_size or 100
        rows = list(await self._registry.events(record.key_id, after, size + 1))
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = page_tokens.encode([rows[-1]["event_id"]], tag)
        return rows, token
