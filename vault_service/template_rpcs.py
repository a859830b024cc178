"""The policy-template RPCs of VaultService (and ProvisionAgent): proto <-> use case only.

A mixin of VaultServicer (servicer.py), like connection_rpcs.py.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from google.protobuf import duration_pb2

from keyleash.vault.v1 import vault_pb2
from keyleash_core.auth import Credential
from keyleash_core.errors import InvalidArgument
from keyleash_core.keyrecord import KeyRecord
from keyleash_core.times import timestamp_from_ms
from keyleash_core.validation import duration_ms, strings, tenant_id, text
from vault_service import convert
from vault_service.domain.templates import Template, VendorKey
from vault_service.usecases.authorize import request_digest
from vault_service.usecases.manage_keys import MintSpec
from vault_service.usecases.templates import TemplateAdmin

Context: TypeAlias = Any


def template_from_proto(message: vault_pb2.PolicyTemplate, path: str = "template") -> Template:
    if len(message.vendor_keys) > 32:
        raise InvalidArgument(f"{path}.vendor_keys", "at most 32 entries")
    vendor_keys = tuple(
        VendorKey(
            text(v.vendor, f"{path}.vendor_keys[{i}].vendor", required=True, limit=64),
            strings(list(v.scopes), f"{path}.vendor_keys[{i}].scopes"),
            convert.policy_from_proto(v.policy, f"{path}.vendor_keys[{i}].policy"),
        )
        for i, v in enumerate(message.vendor_keys)
    )
    return Template(
        name="",
        display_name=text(message.display_name, f"{path}.display_name", limit=120),
        description=text(message.description, f"{path}.description", limit=2000),
        scopes=strings(list(message.scopes), f"{path}.scopes"),
        policy=convert.policy_from_proto(message.policy, f"{path}.policy"),
        ttl_ms=duration_ms(message.ttl, f"{path}.ttl") if message.HasField("ttl") else 0,
        vendor_keys=vendor_keys,
    )


def template_to_proto(template: Template) -> vault_pb2.PolicyTemplate:
    message = vault_pb2.PolicyTemplate(
        name=template.name,
        display_name=template.display_name,
        description=template.description,
        scopes=list(template.scopes),
        policy=convert.policy_to_proto(template.policy),
        vendor_keys=[
            vault_pb2.VendorKeyTemplate(
                vendor=v.vendor, scopes=list(v.scopes), policy=convert.policy_to_proto(v.policy)
            )
            for v in template.vendor_keys
        ],
    )
    if template.ttl_ms:
        message.ttl.CopyFrom(duration_pb2.Duration(seconds=template.ttl_ms // 1000))
    if template.create_time_ms:
        message.create_time.CopyFrom(timestamp_from_ms(template.create_time_ms))
    return message


class TemplateRpcs:
    """CreatePolicyTemplate ... ProvisionAgent; needs `_templates`, `_credential`, `_now_ms`."""

    _templates: TemplateAdmin

    def _credential(self, context: Context) -> Credential:
        raise NotImplementedError

    def _key_proto(self, record: KeyRecord) -> vault_pb2.Key:
        raise NotImplementedError

    async def CreatePolicyTemplate(
        self, request: vault_pb2.CreatePolicyTemplateRequest, context: Context
    ) -> vault_pb2.PolicyTemplate:
        created = await self._templates.create(
            self._credential(context),
            tenant_id(request.tenant_id, required=True),
            text(request.template_id, "template_id", required=True, limit=63),
            template_from_proto(request.template),
            text(request.request_id, "request_id", limit=256),
            request_digest(request.SerializeToString(deterministic=True)),
        )
        return template_to_proto(created)

    async def GetPolicyTemplate(
        self, request: vault_pb2.GetPolicyTemplateRequest, context: Context
    ) -> vault_pb2.PolicyTemplate:
        name = text(request.name, "name", required=True, limit=200)
        return template_to_proto(await self._templates.get(self._credential(context), name))

    async def ListPolicyTemplates(
        self, request: vault_pb2.ListPolicyTemplatesRequest, context: Context
    ) -> vault_pb2.ListPolicyTemplatesResponse:
        if not 0 <= request.page_size <= 1000:
            raise InvalidArgument("page_size", "between 0 and 1000")
        templates, token = await self._templates.list_page(
            self._credential(context),
            tenant_id(request.tenant_id),
            request.page_size,
            text(request.page_token, "page_token", limit=512),
        )
        return vault_pb2.ListPolicyTemplatesResponse(
            templates=[template_to_proto(t) for t in templates], next_page_token=token
        )

    async def DeletePolicyTemplate(
        self, request: vault_pb2.DeletePolicyTemplateRequest, context: Context
    ) -> vault_pb2.DeletePolicyTemplateResponse:
        name = text(request.name, "name", required=True, limit=200)
        await self._templates.delete(self._credential(context), name)
        return vault_pb2.DeletePolicyTemplateResponse()

    async def ProvisionAgent(
        self, request: vault_pb2.ProvisionAgentRequest, context: Context
    ) -> vault_pb2.ProvisionAgentResponse:
        spec = MintSpec(
            tenant_id=tenant_id(request.tenant_id),
            agent_id=text(request.agent_id, "agent_id", required=True, limit=256),
            label=text(request.label, "label", limit=120),
            scopes=(),
            policy=convert.policy_from_proto(vault_pb2.Policy()),
            ttl_ms=0,
            request_id=text(request.request_id, "request_id", limit=256),
        )
        minted = await self._templates.provision(
            self._credential(context),
            spec,
            text(request.template, "template", required=True, limit=200),
            request_digest(request.SerializeToString(deterministic=True)),
        )
        return vault_pb2.ProvisionAgentResponse(
            keys=[
                vault_pb2.MintKeyResponse(key=self._key_proto(record), secret=secret)
                for record, secret in minted
            ]
        )
