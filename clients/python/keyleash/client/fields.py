"""Keyword fields the client methods accept instead of a request message (typed, all optional).

Each mirrors the request message of the same name; a method given keywords builds the message
from them, so `vault.mint_key(agent_id="a", scopes=["x"])` equals
`vault.mint_key(vault_pb2.MintKeyRequest(agent_id="a", scopes=["x"]))`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import TypedDict

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2

Time = datetime.datetime | timestamp_pb2.Timestamp


class MintKeyFields(TypedDict, total=False):
    tenant_id: str
    agent_id: str
    label: str
    scopes: Sequence[str]
    policy: vault_pb2.Policy
    ttl: datetime.timedelta | duration_pb2.Duration
    metadata: Mapping[str, str]
    request_id: str
    template: str


class CreatePolicyTemplateFields(TypedDict, total=False):
    tenant_id: str
    template_id: str
    template: vault_pb2.PolicyTemplate
    request_id: str


class ListPolicyTemplatesFields(TypedDict, total=False):
    tenant_id: str
    page_size: int
    page_token: str


class ProvisionAgentFields(TypedDict, total=False):
    tenant_id: str
    agent_id: str
    template: str
    label: str
    request_id: str


class AuthorizeFields(TypedDict, total=False):
    key: str
    scope: str
    vendor: str
    method: str
    path: str
    estimated_cost: money_pb2.Money
    agent_run_id: str
    attributes: Mapping[str, str]
    request_id: str


class KeyActionFields(TypedDict, total=False):
    """RevokeKey and FreezeKey."""

    name: str
    reason: str


class UpdateKeyPolicyFields(TypedDict, total=False):
    name: str
    policy: vault_pb2.Policy
    update_mask: field_mask_pb2.FieldMask
    reason: str


class ListKeysFields(TypedDict, total=False):
    tenant_id: str
    parent_key_id: str
    label_prefix: str
    state: vault_pb2.Key.State
    page_size: int
    page_token: str
    agent_id: str


class GetKeyUsageFields(TypedDict, total=False):
    agent_run_id: str


class ListKeyEventsFields(TypedDict, total=False):
    page_size: int
    page_token: str


class ListAuthorizationsFields(TypedDict, total=False):
    tenant_id: str
    key_name: str
    agent_run_id: str
    decision: vault_pb2.Decision
    reason: vault_pb2.DenyReason
    start_time: timestamp_pb2.Timestamp
    end_time: timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    order_by: str


class ChargeFields(TypedDict, total=False):
    request_id: str
    key_id: str
    reservation_id: str
    amount: money_pb2.Money
    vendor: str
    endpoint: str
    reason: str
    agent_run_id: str
    vendor_request_id: str
    cost_source: str
    attributes: Mapping[str, str]
    occur_time: Time
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int


class RecordUsageFields(TypedDict, total=False):
    request_id: str
    key_id: str
    agent_run_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    occur_time: Time
    reservation_id: str


class GetSpendFields(TypedDict, total=False):
    """Set exactly one of tenant_id, key_name, agent_id, agent_run_id; with agent_id or
    agent_run_id, subject_tenant_id names their tenant (required for admin and service)."""

    tenant_id: str
    key_name: str
    agent_id: str
    agent_run_id: str
    subject_tenant_id: str
    start_time: Time
    end_time: Time


class ListBillingEventsFields(TypedDict, total=False):
    filter: metering_pb2.BillingEventFilter
    page_size: int
    page_token: str
    order_by: str


class SetTenantModelPriceFields(TypedDict, total=False):
    tenant_id: str
    model: str
    input_per_million_micros: int
    output_per_million_micros: int
    cached_input_per_million_micros: int
    clear: bool


class GetTenantModelPriceFields(TypedDict, total=False):
    tenant_id: str
    model: str


class SetTenantBudgetFields(TypedDict, total=False):
    tenant_id: str
    daily_threshold: money_pb2.Money
    lift_throttle: bool
