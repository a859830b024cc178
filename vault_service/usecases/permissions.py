"""Who may act on which key: an admin on any key of any tenant, a key holder on its descendants
(and, where a use case allows it, on its own key); service credentials manage nothing."""

from __future__ import annotations

from keyleash_core.auth import ADMIN, KEY, Credential
from keyleash_core.errors import NotFound, PermissionDenied, Unauthenticated
from keyleash_core.keyrecord import KeyRecord, parse_key_name
from keyleash_core.reasons import ErrorReason
from vault_service.usecases.key_chains import KeyChains, chain_state

# Service callers may read a tenant's audit, which means resolving key names as an admin would.
ADMIN_VIEW = Credential(ADMIN, "", "service")


class Permissions:
    def __init__(self, chains: KeyChains) -> None:
        self._chains = chains

    async def caller_chain(self, credential: Credential) -> list[KeyRecord]:
        """The chain of a key-holder credential; refuses keys that cannot act (revoked...)."""
        chains = self._chains
        chain = await chains.for_secret(credential.token)
        me = None if chain is None else await chains.registry.get(chain[0].key_id)
        if chain is None or me is None:
            raise Unauthenticated("the key credential names no key")
        fresh = [me, *(await chains.ancestors(me))]
        problem = chain_state(fresh, chains.clock.now_ms())
        if problem is not None:
            raise PermissionDenied(
                f"the calling key cannot act: {problem.lower().replace('_', ' ')}",
                metadata={"state": problem.value},
            )
        return fresh

    async def key_by_name(
        self, credential: Credential, name: str, *, allow_self: bool
    ) -> KeyRecord:
        """The named key if the caller may manage it: an admin, or an ancestor key holder."""
        parsed = parse_key_name(name)
        if parsed is None:
            raise NotFound(f"no key named {name!r}", reason=ErrorReason.KEY_NOT_FOUND)
        tenant_id, key_id = parsed
        record = await self._chains.registry.get(key_id)
        if record is None or record.tenant_id != tenant_id:
            raise NotFound(f"no key named {name!r}", reason=ErrorReason.KEY_NOT_FOUND)
        if credential.kind == ADMIN:
            return record
        if credential.kind != KEY:
            raise PermissionDenied("service credentials cannot manage keys")
        caller = (await self.caller_chain(credential))[0]
        is_ancestor = caller.key_id in record.key_path[:-1]
        if not (is_ancestor or (allow_self and caller.key_id == record.key_id)):
            raise PermissionDenied(f"{caller.name} may not act on {name}")
        return record
