"""The VaultService client.

Methods take the generated request message, or its fields as keywords, and return the generated
response. Every method also takes `timeout` (seconds; default: the client's) and `token` (a
bearer token for this call only, e.g. a key secret). Failures raise `keyleash.client.errors`
exceptions; a DENY decision is an answer, not an exception (see `raise_for_decision` / `guard`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar, Unpack

from keyleash.client._async.approvals import ApprovalCalls
from keyleash.client._base import named_request, run_stamper
from keyleash.client._transport import AsyncRequests, build_request
from keyleash.client.config import VAULT_TARGET_ENV
from keyleash.client.fields import (
    AuthorizeFields,
    CreatePolicyTemplateFields,
    GetKeyUsageFields,
    KeyActionFields,
    ListAuthorizationsFields,
    ListKeyEventsFields,
    ListKeysFields,
    ListPolicyTemplatesFields,
    MintKeyFields,
    ProvisionAgentFields,
    UpdateKeyPolicyFields,
)
from keyleash.vault.v1 import vault_pb2 as V
from keyleash.vault.v1 import vault_pb2_grpc


class VaultClient(ApprovalCalls):
    """VaultService client. `async with VaultClient(...) as vault: ...` (the approval methods
    come from ApprovalCalls)."""

    TARGET_ENV: ClassVar[str] = VAULT_TARGET_ENV

    def _make_stub(self, channel: Any) -> Any:
        return vault_pb2_grpc.VaultServiceStub(channel)

    async def mint_key(
        self,
        request: V.MintKeyRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[MintKeyFields],
    ) -> V.MintKeyResponse:
        """Mints a key (retried on UNAVAILABLE only when request_id is set)."""
        built = build_request(V.MintKeyRequest, request, fields)
        return await self._invoker.unary("MintKey", built, V.MintKeyResponse, timeout, token)

    async def authorize(
        self,
        request: V.AuthorizeRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[AuthorizeFields],
    ) -> V.AuthorizeResponse:
        """Decides one call; agent_run_id comes from `agent_run()` when empty."""
        built = run_stamper()(build_request(V.AuthorizeRequest, request, fields))
        return await self._invoker.unary("Authorize", built, V.AuthorizeResponse, timeout, token)

    async def authorize_batch(
        self,
        requests: Iterable[V.AuthorizeRequest],
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> list[V.AuthorizeResponse]:
        """Decides many calls in one message (1 to 1,000): one answer per request, in request
        order. agent_run_id comes from `agent_run()` where empty. Retried on UNAVAILABLE only
        when every request has a request_id (the server then replays decisions already taken)."""
        stamp = run_stamper()
        built = V.AuthorizeBatchRequest(requests=[stamp(r) for r in requests])
        response = await self._invoker.unary(
            "AuthorizeBatch", built, V.AuthorizeBatchResponse, timeout, token
        )
        return list(response.responses)

    def authorize_stream(
        self,
        requests: AsyncRequests[V.AuthorizeRequest],
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> AsyncIterator[V.AuthorizeResponse]:
        """One decision per request, in request order."""
        return self._invoker.stream_stream(
            "AuthorizeStream", requests, run_stamper(), V.AuthorizeResponse, timeout, token
        )

    async def validate_key(
        self,
        request: V.ValidateKeyRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.ValidateKeyResponse:
        """Introspects a key (a request, or the secret itself); consumes nothing."""
        built = named_request(V.ValidateKeyRequest, request, {}, "key")
        return await self._invoker.unary(
            "ValidateKey", built, V.ValidateKeyResponse, timeout, token
        )

    async def revoke_key(
        self,
        request: V.RevokeKeyRequest | str | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[KeyActionFields],
    ) -> V.RevokeKeyResponse:
        """Revokes a key (a request, or its name) and its descendants. Never retried."""
        built = named_request(V.RevokeKeyRequest, request, fields)
        return await self._invoker.unary("RevokeKey", built, V.RevokeKeyResponse, timeout, token)

    async def freeze_key(
        self,
        request: V.FreezeKeyRequest | str | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[KeyActionFields],
    ) -> V.Key:
        """Freezes a key (a request, or its name) and its subtree. Never retried."""
        built = named_request(V.FreezeKeyRequest, request, fields)
        return await self._invoker.unary("FreezeKey", built, V.Key, timeout, token)

    async def unfreeze_key(
        self,
        request: V.UnfreezeKeyRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.Key:
        """Lifts a freeze (a request, or the key's name). Never retried."""
        built = named_request(V.UnfreezeKeyRequest, request, {})
        return await self._invoker.unary("UnfreezeKey", built, V.Key, timeout, token)

    async def update_key_policy(
        self,
        request: V.UpdateKeyPolicyRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[UpdateKeyPolicyFields],
    ) -> V.Key:
        """Changes a key's policy, never beyond its parent's. Never retried."""
        built = build_request(V.UpdateKeyPolicyRequest, request, fields)
        return await self._invoker.unary("UpdateKeyPolicy", built, V.Key, timeout, token)

    async def get_key(
        self,
        request: V.GetKeyRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.Key:
        """One key, by request or name "tenants/{t}/keys/{k}"."""
        built = named_request(V.GetKeyRequest, request, {})
        return await self._invoker.unary("GetKey", built, V.Key, timeout, token)

    async def list_keys(
        self,
        request: V.ListKeysRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListKeysFields],
    ) -> V.ListKeysResponse:
        """One page of keys."""
        built = build_request(V.ListKeysRequest, request, fields)
        return await self._invoker.unary("ListKeys", built, V.ListKeysResponse, timeout, token)

    async def iter_keys(
        self,
        request: V.ListKeysRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListKeysFields],
    ) -> AsyncIterator[V.Key]:
        """Every key matching the filter, page after page."""
        built = build_request(V.ListKeysRequest, request, fields)
        while True:
            page = await self._invoker.unary("ListKeys", built, V.ListKeysResponse, timeout, token)
            for key in page.keys:
                yield key
            if not page.next_page_token:
                return
            built.page_token = page.next_page_token

    async def list_authorizations(
        self,
        request: V.ListAuthorizationsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListAuthorizationsFields],
    ) -> V.ListAuthorizationsResponse:
        """One page of recorded decisions (the per-call audit), oldest first."""
        built = build_request(V.ListAuthorizationsRequest, request, fields)
        return await self._invoker.unary(
            "ListAuthorizations", built, V.ListAuthorizationsResponse, timeout, token
        )

    async def iter_authorizations(
        self,
        request: V.ListAuthorizationsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListAuthorizationsFields],
    ) -> AsyncIterator[V.Authorization]:
        """Every recorded decision matching the filter, page after page."""
        built = build_request(V.ListAuthorizationsRequest, request, fields)
        while True:
            page = await self._invoker.unary(
                "ListAuthorizations", built, V.ListAuthorizationsResponse, timeout, token
            )
            for item in page.authorizations:
                yield item
            if not page.next_page_token:
                return
            built.page_token = page.next_page_token

    async def get_key_usage(
        self,
        request: V.GetKeyUsageRequest | str | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[GetKeyUsageFields],
    ) -> V.GetKeyUsageResponse:
        """What a key (by request or name; none: the calling key) and its ancestors have used
        and have left of every limit, and their open holds. Consumes nothing."""
        built = named_request(V.GetKeyUsageRequest, request, fields)
        return await self._invoker.unary(
            "GetKeyUsage", built, V.GetKeyUsageResponse, timeout, token
        )

    async def iter_key_events(
        self,
        request: V.ListKeyEventsRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListKeyEventsFields],
    ) -> AsyncIterator[V.KeyEvent]:
        """A key's history (by request or name), oldest first, page after page."""
        built = named_request(V.ListKeyEventsRequest, request, fields)
        while True:
            page = await self._invoker.unary(
                "ListKeyEvents", built, V.ListKeyEventsResponse, timeout, token
            )
            for event in page.events:
                yield event
            if not page.next_page_token:
                return
            built.page_token = page.next_page_token

    async def create_policy_template(
        self,
        request: V.CreatePolicyTemplateRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[CreatePolicyTemplateFields],
    ) -> V.PolicyTemplate:
        """A tenant's new policy template (admin); idempotent by request_id."""
        built = build_request(V.CreatePolicyTemplateRequest, request, fields)
        return await self._invoker.unary(
            "CreatePolicyTemplate", built, V.PolicyTemplate, timeout, token
        )

    async def get_policy_template(
        self,
        request: V.GetPolicyTemplateRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.PolicyTemplate:
        """A template by request or name: "policyTemplates/{id}" (shipped) or
        "tenants/{t}/policyTemplates/{id}"."""
        built = named_request(V.GetPolicyTemplateRequest, request, {})
        return await self._invoker.unary(
            "GetPolicyTemplate", built, V.PolicyTemplate, timeout, token
        )

    async def list_policy_templates(
        self,
        request: V.ListPolicyTemplatesRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListPolicyTemplatesFields],
    ) -> V.ListPolicyTemplatesResponse:
        """One page: the shipped templates, then the tenant's."""
        built = build_request(V.ListPolicyTemplatesRequest, request, fields)
        return await self._invoker.unary(
            "ListPolicyTemplates", built, V.ListPolicyTemplatesResponse, timeout, token
        )

    async def delete_policy_template(
        self,
        request: V.DeletePolicyTemplateRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> V.DeletePolicyTemplateResponse:
        """Deletes a tenant's template (admin)."""
        built = named_request(V.DeletePolicyTemplateRequest, request, {})
        return await self._invoker.unary(
            "DeletePolicyTemplate", built, V.DeletePolicyTemplateResponse, timeout, token
        )

    async def provision_agent(
        self,
        request: V.ProvisionAgentRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ProvisionAgentFields],
    ) -> V.ProvisionAgentResponse:
        """One vendor-locked key per vendor key of a template, all or none; idempotent by
        request_id (retried on UNAVAILABLE only when it is set)."""
        built = build_request(V.ProvisionAgentRequest, request, fields)
        return await self._invoker.unary(
            "ProvisionAgent", built, V.ProvisionAgentResponse, timeout, token
        )
