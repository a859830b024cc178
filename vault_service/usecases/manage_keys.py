"""Managing keys: mint, change a policy, freeze/unfreeze and revoke a subtree, get and list.

Every change is durable in Postgres (with a key_events row: who, when, why) and in Redis before
the RPC returns, so the very next Authorize on any replica sees it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field, replace

import asyncpg

from keyleash_core import page_tokens
from keyleash_core.auth import ADMIN, KEY, SERVICE, Credential
from keyleash_core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from keyleash_core.keyrecord import KeyRecord, KeyState
from keyleash_core.policy import ExceedsParent, Policy, check_within_parent
from keyleash_core.reasons import ErrorReason
from vault_service.domain import secrets as key_secrets
from vault_service.usecases.key_chains import KeyChains
from vault_service.usecases.permissions import Permissions

log = logging.getLogger("keyleash.vault")


@dataclass(frozen=True)
class MintSpec:
    """A validated MintKey request."""

    tenant_id: str
    agent_id: str
    label: str
    scopes: tuple[str, ...]
    policy: Policy
    ttl_ms: int  # 0: the default
    metadata: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    digest: bytes = b""


@dataclass(frozen=True)
class ListFilter:
    tenant_id: str
    parent_key_id: str
    label_prefix: str
    state: str
    page_size: int
    page_token: str
    agent_id: str = ""


class KeyAdmin:
    """The key-management use cases. One per process; safe for concurrent use."""

    def __init__(
        self,
        chains: KeyChains,
        permissions: Permissions,
        *,
        max_depth: int,
        default_ttl_ms: int,
        max_ttl_ms: int,
    ) -> None:
        self._vault = chains
        self._permissions = permissions
        self._max_depth = max_depth
        self._default_ttl_ms = default_ttl_ms
        self._max_ttl_ms = max_ttl_ms

    async def minting_parent(self, credential: Credential, tenant_id: str) -> KeyRecord | None:
        """The key new keys become children of (None: an admin mints root keys)."""
        if credential.kind == KEY:
            parent = (await self._permissions.caller_chain(credential))[0]
            if tenant_id and tenant_id != parent.tenant_id:
                raise PermissionDenied("a key holder mints only in its own tenant")
            return parent
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin or a key holder may mint keys")
        if not tenant_id:
            raise InvalidArgument("tenant_id", "required when an admin mints a root key")
        return None

    async def mint(self, credential: Credential, spec: MintSpec) -> tuple[KeyRecord, str]:
        """A new key and its secret; a retry with the same request_id returns the same pair."""
        vault = self._vault
        parent = await self.minting_parent(credential, spec.tenant_id)
        if parent is not None:
            spec = replace(spec, tenant_id=parent.tenant_id)
        if spec.request_id:
            existing = await vault.registry.find_mint(credential.actor, spec.request_id)
            if existing is not None:
                return self._replay(credential, spec, *existing)
        record = self._new_record(spec, parent)
        secret = (
            key_secrets.derived_secret(vault.pepper, credential.actor, spec.request_id)
            if spec.request_id
            else key_secrets.new_secret()
        )
        digest = vault.hash_secret(secret)
        try:
            inserted = await vault.registry.insert(
                record,
                digest,
                minted_by=credential.actor,
                request_id=spec.request_id,
                request_digest=spec.digest,
            )
        except asyncpg.UniqueViolationError:
            inserted = False  # a concurrent retry of the same request_id won the race
        if not inserted:
            existing = await vault.registry.find_mint(credential.actor, spec.request_id)
            if existing is None:
                raise FailedPrecondition("the mint raced with another; retry")
            return self._replay(credential, spec, *existing)
        await vault.hot.load(record, [], [], 0)
        await vault.hot.index_secret(digest.hex(), record.tenant_id, record.key_id)
        return record, secret

    async def mint_many(
        self, credential: Credential, specs: list[MintSpec], request_id: str, digest: bytes
    ) -> list[tuple[KeyRecord, str]]:
        """Several keys in one transaction, all or none (ProvisionAgent); a retry with the same
        request_id returns the same keys and secrets, a different request with it is refused."""
        vault = self._vault
        parent = await self.minting_parent(credential, specs[0].tenant_id if specs else "")
        found = await vault.registry.find_provisioned(credential.actor, request_id)
        if found is None:
            records = [
                self._new_record(replace(s, tenant_id=parent.tenant_id) if parent else s, parent)
                for s in specs
            ]
            secrets_ = [
                _provisioned_secret(vault.pepper, credential.actor, request_id, i)
                for i in range(len(records))
            ]
            hashed = [(r, vault.hash_secret(x)) for r, x in zip(records, secrets_, strict=True)]
            if await vault.registry.insert_provisioned(
                hashed, minted_by=credential.actor, request_id=request_id, request_digest=digest
            ):
                await asyncio.gather(*(self._load_hot(r, h) for r, h in hashed))
                return list(zip(records, secrets_, strict=True))
            found = await vault.registry.find_provisioned(credential.actor, request_id)
            if found is None:
                raise FailedPrecondition("the provisioning raced with another; retry")
        records, stored_digest = found
        if stored_digest != digest:
            raise AlreadyExists(
                f"request_id {request_id!r} was used for a different ProvisionAgent request",
                reason=ErrorReason.REQUEST_ID_REUSED,
            )
        return [
            (r, _provisioned_secret(vault.pepper, credential.actor, request_id, i))
            for i, r in enumerate(records)
        ]

    async def _load_hot(self, record: KeyRecord, secret_hash: bytes) -> None:
        await self._vault.hot.load(record, [], [], 0)
        await self._vault.hot.index_secret(secret_hash.hex(), record.tenant_id, record.key_id)

    def _replay(
        self, credential: Credential, spec: MintSpec, record: KeyRecord, digest: bytes
    ) -> tuple[KeyRecord, str]:
        if digest != spec.digest:
            raise AlreadyExists(
                f"request_id {spec.request_id!r} was used for a different MintKey request",
                reason=ErrorReason.REQUEST_ID_REUSED,
            )
        secret = key_secrets.derived_secret(self._vault.pepper, credential.actor, spec.request_id)
        return record, secret

    def _new_record(self, spec: MintSpec, parent: KeyRecord | None) -> KeyRecord:
        now = self._vault.clock.now_ms()
        ttl = spec.ttl_ms or self._default_ttl_ms
        if ttl > self._max_ttl_ms:
            raise InvalidArgument("ttl", f"at most {self._max_ttl_ms // 1000} seconds")
        expire = now + ttl
        key_id = "k_" + secrets.token_hex(10)
        path: tuple[str, ...] = (key_id,)
        if parent is not None:
            if parent.depth + 1 > self._max_depth:
                raise PermissionDenied(
                    f"the key hierarchy is limited to depth {self._max_depth}",
                    reason=ErrorReason.DEPTH_EXCEEDED,
                )
            self._check_child(spec, parent, expire)
            path = (*parent.key_path, key_id)
        return KeyRecord(
            key_id=key_id,
            tenant_id=spec.tenant_id,
            parent_key_id=parent.key_id if parent else "",
            key_path=path,
            agent_id=spec.agent_id,
            label=spec.label,
            scopes=spec.scopes,
            policy=spec.policy,
            policy_version=1,
            state=KeyState.ACTIVE,
            create_time_ms=now,
            expire_time_ms=min(expire, parent.expire_time_ms)
            if parent and not spec.ttl_ms
            else expire,
            metadata=dict(spec.metadata),
        )

    @staticmethod
    def _check_child(spec: MintSpec, parent: KeyRecord, expire_ms: int) -> None:
        extra = sorted(set(spec.scopes) - set(parent.scopes))
        if extra:
            raise _exceeds("scopes", f"not granted to the parent: {', '.join(extra)}")
        if spec.ttl_ms and expire_ms > parent.expire_time_ms:
            raise _exceeds("ttl", "the key would outlive its parent")
        try:
            check_within_parent(spec.policy, parent.policy)
        except ExceedsParent as error:
            raise _exceeds(error.field, error.detail) from None

    async def update_policy(
        self, credential: Credential, name: str, policy: Policy, reason: str
    ) -> KeyRecord:
        record = await self._permissions.key_by_name(credential, name, allow_self=False)
        if record.state is KeyState.REVOKED:
            raise FailedPrecondition(f"{name} is revoked", reason=ErrorReason.KEY_STATE)
        if record.parent_key_id:
            parent = await self._vault.registry.get(record.parent_key_id)
            assert parent is not None
            try:
                check_within_parent(policy, parent.policy)
            except ExceedsParent as error:
                raise _exceeds(error.field, error.detail) from None
        updated = await self._vault.registry.update_policy(record, policy, credential.actor, reason)
        if updated is None:
            raise FailedPrecondition(
                f"{name}'s policy changed meanwhile; retry", reason=ErrorReason.KEY_STATE
            )
        await self._vault.hot.set_policy(updated)
        return updated

    async def revoke(self, credential: Credential, name: str, reason: str) -> tuple[KeyRecord, int]:
        """Revokes the key and its whole subtree, irreversibly; returns it and the count of
        descendants revoked with it."""
        record = await self._permissions.key_by_name(credential, name, allow_self=True)
        vault = self._vault
        revoked = await vault.registry.revoke_subtree(
            record, credential.actor, reason, vault.clock.now_ms()
        )
        if revoked:
            await vault.hot.set_state(revoked, KeyState.REVOKED)
            log.info("revoked %s and %d descendants", record.name, len(revoked) - 1)
        current = await vault.registry.get(record.key_id)
        assert current is not None
        return current, max(len(revoked) - 1, 0)

    async def set_frozen(
        self, credential: Credential, name: str, frozen: bool, reason: str
    ) -> KeyRecord:
        """Freezes (or unfreezes) the key; its descendants are blocked through it."""
        record = await self._permissions.key_by_name(credential, name, allow_self=False)
        wanted = KeyState.FROZEN if frozen else KeyState.ACTIVE
        if record.state is KeyState.REVOKED:
            raise FailedPrecondition(f"{name} is revoked", reason=ErrorReason.KEY_STATE)
        if record.state is wanted:
            return record
        updated = await self._vault.registry.set_state(record, wanted, credential.actor, reason)
        if updated is None:
            raise FailedPrecondition(
                f"{name} changed state meanwhile; retry", reason=ErrorReason.KEY_STATE
            )
        await self._vault.hot.set_state([updated], wanted)
        log.info("%s %s", "froze" if frozen else "unfroze", name)
        return updated

    async def get(self, credential: Credential, name: str) -> KeyRecord:
        return await self._permissions.key_by_name(credential, name, allow_self=True)

    async def list_keys(
        self, credential: Credential, spec: ListFilter
    ) -> tuple[list[KeyRecord], str]:
        within = ""
        tenant_id = spec.tenant_id
        if credential.kind == KEY:
            me = (await self._permissions.caller_chain(credential))[0]
            if tenant_id and tenant_id != me.tenant_id:
                raise PermissionDenied("a key holder lists only its own tenant")
            tenant_id, within = me.tenant_id, me.key_id
        elif credential.kind not in (ADMIN, SERVICE):
            raise PermissionDenied("this credential cannot list keys")
        elif not tenant_id:
            raise InvalidArgument("tenant_id", "required")
        tag = page_tokens.filter_tag(
            "keys", tenant_id, within, spec.parent_key_id, spec.label_prefix, spec.state,
            spec.agent_id,
        )  # fmt: skip
        after = page_tokens.decode_time_position(spec.page_token, tag)
        size = spec.page_size or 100
        rows = await self._vault.registry.list(
            tenant_id=tenant_id,
            within_key_id=within,
            parent_key_id=spec.parent_key_id,
            label_prefix=spec.label_prefix,
            state=spec.state,
            agent_id=spec.agent_id,
            after=after,
            limit=size + 1,
        )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last, created = rows[-1]
            token = page_tokens.encode_time_position(created, last.key_id, tag)
        return [record for record, _ in rows], token


def _provisioned_secret(pepper: bytes, actor: str, request_id: str, index: int) -> str:
    """The secret of key `index` of a ProvisionAgent request, derived again on a retry."""
    return key_secrets.derived_secret(pepper, actor, "provision", request_id, str(index))


def _exceeds(field_path: str, detail: str) -> PermissionDenied:
    return PermissionDenied(
        f"{field_path}: {detail}", reason=ErrorReason.EXCEEDS_PARENT, metadata={"field": field_path}
    )
