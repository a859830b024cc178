"""Which key a credential may record or read spend for: admins and services any key, a key
holder only its own (and, for reading, its subtree)."""

from __future__ import annotations

import hmac

from keyleash_core.auth import ADMIN, KEY, SERVICE, Credential, secret_hash
from keyleash_core.errors import PermissionDenied, Unauthenticated
from metering_service.store.keys import KeyChain, KeyDirectory


class KeyAccess:
    def __init__(self, keys: KeyDirectory, pepper: bytes) -> None:
        self.keys = keys
        self._pepper = pepper

    def _secret_hash(self, secret: str) -> bytes:
        return secret_hash(self._pepper, secret)

    async def chain_for(self, credential: Credential, key_id: str) -> KeyChain:
        """The key's chain, if the caller may record spend for it."""
        chain = await self.keys.chain(key_id)
        if credential.kind in (ADMIN, SERVICE):
            return chain
        if credential.kind == KEY and hmac.compare_digest(
            self._secret_hash(credential.token), chain.secret_hash
        ):
            return chain
        raise PermissionDenied("a key holder may record spend only for its own key")

    async def caller_key(self, credential: Credential) -> KeyChain:
        key_id = await self.keys.key_id_for_hash(self._secret_hash(credential.token))
        if key_id is None:
            raise Unauthenticated("the key credential names no key")
        return await self.keys.chain(key_id)
