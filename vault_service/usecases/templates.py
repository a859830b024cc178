"""Policy templates: a tenant's (create, get, list, delete; admin) and the shipped starters;
minting from one (explicit fields only narrow it) and provisioning an agent with one key per
vendor of a template, all or none."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

from keyleash_core import page_tokens
from keyleash_core.auth import ADMIN, KEY, Credential
from keyleash_core.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.policy import ExceedsParent, Policy
from keyleash_core.policy_narrowing import narrowed
from keyleash_core.reasons import ErrorReason
from keyleash_core.validation import tenant_id as valid_tenant_id
from vault_service.domain.templates import SHIPPED, SHIPPED_PREFIX, Template
from vault_service.store.templates import TemplateStore, template_name
from vault_service.usecases.manage_keys import KeyAdmin, MintSpec
from vault_service.usecases.permissions import Permissions

TEMPLATE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_NAME = re.compile(r"tenants/([^/]+)/policyTemplates/([^/]+)")


def exceeds_template(field_path: str, detail: str) -> PermissionDenied:
    return PermissionDenied(
        f"{field_path}: {detail}",
        reason=ErrorReason.EXCEEDS_TEMPLATE,
        metadata={"field": field_path},
    )


def apply_template(template: Template, spec: MintSpec) -> MintSpec:
    """The MintKey spec a template makes of `spec`: the template's scopes, policy and ttl, each
    narrowed by what `spec` states explicitly (EXCEEDS_TEMPLATE for anything wider)."""
    scopes = spec.scopes or template.scopes
    extra = sorted(set(scopes) - set(template.scopes)) if template.scopes else []
    if extra:
        raise exceeds_template("scopes", f"not in the template: {', '.join(extra)}")
    if template.ttl_ms and spec.ttl_ms > template.ttl_ms:
        raise exceeds_template("ttl", f"at most the template's {template.ttl_ms // 1000} s")
    try:
        policy = narrowed(template.policy, spec.policy)
    except ExceedsParent as error:
        raise exceeds_template(error.field, error.detail) from None
    return replace(spec, scopes=scopes, policy=policy, ttl_ms=spec.ttl_ms or template.ttl_ms)


class TemplateAdmin:
    def __init__(self, store: TemplateStore, keys: KeyAdmin, permissions: Permissions) -> None:
        self._store = store
        self._keys = keys
        self._permissions = permissions

    async def _tenant_of(self, credential: Credential) -> str:
        """The one tenant a key holder sees ("" for an admin, who sees all)."""
        if credential.kind == ADMIN:
            return ""
        if credential.kind == KEY:
            return (await self._permissions.caller_chain(credential))[0].tenant_id
        raise PermissionDenied("templates are for admins and key holders")

    async def create(
        self,
        credential: Credential,
        tenant_id: str,
        template_id: str,
        template: Template,
        request_id: str,
        digest: bytes,
    ) -> Template:
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin creates templates")
        if not TEMPLATE_ID.fullmatch(template_id):
            raise InvalidArgument("template_id", "must match [a-z0-9][a-z0-9-]{0,62}")
        if request_id:
            earlier = await self._store.find_created(credential.actor, request_id)
            if earlier is not None:
                if earlier[1] != digest:
                    raise AlreadyExists(
                        f"request_id {request_id!r} was used for a different template",
                        reason=ErrorReason.REQUEST_ID_REUSED,
                    )
                return earlier[0]
        named = replace(template, name=template_name(tenant_id, template_id), vendor_keys=tuple(
            replace(v, policy=_vendor_policy(v.vendor, v.policy)) for v in template.vendor_keys
        ))  # fmt: skip
        if SHIPPED_PREFIX + template_id in SHIPPED or not await self._store.insert(
            tenant_id,
            template_id,
            named,
            created_by=credential.actor,
            request_id=request_id,
            request_digest=digest,
        ):
            raise AlreadyExists(
                f"template {template_id!r} exists (or is a shipped template's id)",
                reason=ErrorReason.TEMPLATE_EXISTS,
            )
        stored = await self._store.get(tenant_id, template_id)
        assert stored is not None
        return stored

    async def get(self, credential: Credential, name: str) -> Template:
        visible = await self._tenant_of(credential)
        if name in SHIPPED:
            return SHIPPED[name]
        match = _NAME.fullmatch(name)
        if match is None:
            raise InvalidArgument(
                "name", "policyTemplates/{id} or tenants/{tenant}/policyTemplates/{id}"
            )
        tenant = valid_tenant_id(match[1], "name")
        found = await self._store.get(tenant, match[2]) if visible in ("", tenant) else None
        if found is None:
            raise NotFound(f"{name} does not exist", reason=ErrorReason.NOT_FOUND)
        return found

    async def list_page(
        self, credential: Credential, tenant_id: str, page_size: int, page_token: str
    ) -> tuple[list[Template], str]:
        visible = await self._tenant_of(credential)
        tenant = tenant_id or visible
        if not tenant:
            raise InvalidArgument("tenant_id", "required for admins")
        if visible and tenant != visible:
            raise PermissionDenied("a key holder lists only its own tenant's templates")
        size = page_size or 100
        tag = page_tokens.filter_tag("templates", tenant)
        position = page_tokens.decode(page_token, tag)
        after = str(position[0]) if position else ""
        shipped = [t for name, t in sorted(SHIPPED.items()) if name > after]
        own_after = after.rsplit("/", 1)[1] if after.startswith("tenants/") else ""
        own = await self._store.list(tenant, own_after, size + 1)
        page = (shipped + list(own))[: size + 1]
        token = page_tokens.encode([page[size - 1].name], tag) if len(page) > size else ""
        return page[:size], token

    async def delete(self, credential: Credential, name: str) -> None:
        if credential.kind != ADMIN:
            raise PermissionDenied("only an admin deletes templates")
        if name in SHIPPED:
            raise PermissionDenied(f"{name} is a shipped template; it cannot be deleted")
        match = _NAME.fullmatch(name)
        if match is None or not await self._store.delete(match[1], match[2]):
            raise NotFound(f"{name} does not exist", reason=ErrorReason.NOT_FOUND)

    async def mint_spec(self, credential: Credential, template: str, spec: MintSpec) -> MintSpec:
        """`spec` made from the named template."""
        return apply_template(await self.get(credential, template), spec)

    async def provision(
        self, credential: Credential, spec: MintSpec, template_name_: str, digest: bytes
    ) -> list[tuple[KeyRecord, str]]:
        """One key per vendor key of the template, each vendor-locked, all or none."""
        template = await self.get(credential, template_name_)
        if not template.vendor_keys:
            raise InvalidArgument("template", f"{template.name} has no vendor_keys to provision")
        specs = []
        for index, vendor_key in enumerate(template.vendor_keys):
            vendor_spec = replace(
                spec,
                scopes=vendor_key.scopes,
                policy=_vendor_policy(vendor_key.vendor, vendor_key.policy),
            )
            try:
                specs.append(apply_template(template, vendor_spec))
            except PermissionDenied as error:
                raise exceeds_template(f"vendor_keys[{index}]", error.message) from None
        request_id = spec.request_id or "auto-" + uuid.uuid4().hex
        return await self._keys.mint_many(credential, specs, request_id, digest)


def _vendor_policy(vendor: str, policy: Policy) -> Policy:
    """A vendor key's policy, locked to its vendor."""
    return replace(policy, allowed_vendors=(vendor,))
