import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from keyleash.type.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_DENY: _ClassVar[Decision]

class DenyReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DENY_REASON_UNSPECIFIED: _ClassVar[DenyReason]
    DENY_REASON_KEY_UNKNOWN: _ClassVar[DenyReason]
    DENY_REASON_KEY_REVOKED: _ClassVar[DenyReason]
    DENY_REASON_KEY_FROZEN: _ClassVar[DenyReason]
    DENY_REASON_KEY_EXPIRED: _ClassVar[DenyReason]
    DENY_REASON_SCOPE_DENIED: _ClassVar[DenyReason]
    DENY_REASON_ENDPOINT_DENIED: _ClassVar[DenyReason]
    DENY_REASON_VENDOR_DENIED: _ClassVar[DenyReason]
    DENY_REASON_CONSTRAINT_DENIED: _ClassVar[DenyReason]
    DENY_REASON_RATE_LIMITED: _ClassVar[DenyReason]
    DENY_REASON_SPEND_CAP_EXCEEDED: _ClassVar[DenyReason]
    DENY_REASON_RUN_CAP_EXCEEDED: _ClassVar[DenyReason]
    DENY_REASON_PER_CALL_CAP_EXCEEDED: _ClassVar[DenyReason]
    DENY_REASON_CALLS_EXHAUSTED: _ClassVar[DenyReason]
    DENY_REASON_TENANT_THROTTLED: _ClassVar[DenyReason]
    DENY_REASON_MODEL_UNKNOWN: _ClassVar[DenyReason]
    DENY_REASON_FX_RATE_UNKNOWN: _ClassVar[DenyReason]

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_ARGUMENT: _ClassVar[ErrorReason]
    ERROR_REASON_UNAUTHENTICATED: _ClassVar[ErrorReason]
    ERROR_REASON_PERMISSION_DENIED: _ClassVar[ErrorReason]
    ERROR_REASON_EXCEEDS_PARENT: _ClassVar[ErrorReason]
    ERROR_REASON_KEY_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_KEY_STATE: _ClassVar[ErrorReason]
    ERROR_REASON_DEPTH_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_REQUEST_ID_REUSED: _ClassVar[ErrorReason]
    ERROR_REASON_STORE_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_TOO_MANY_ATTEMPTS: _ClassVar[ErrorReason]
    ERROR_REASON_NOT_IMPLEMENTED: _ClassVar[ErrorReason]
    ERROR_REASON_AUDIT_BACKLOG_FULL: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_FAILED_PRECONDITION: _ClassVar[ErrorReason]
    ERROR_REASON_STORE_TIMEOUT: _ClassVar[ErrorReason]
    ERROR_REASON_CONNECTION_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_SECRETS_KEY_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_CONNECTION_EXISTS: _ClassVar[ErrorReason]
    ERROR_REASON_EXCEEDS_TEMPLATE: _ClassVar[ErrorReason]
    ERROR_REASON_TEMPLATE_EXISTS: _ClassVar[ErrorReason]
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_DENY: Decision
DENY_REASON_UNSPECIFIED: DenyReason
DENY_REASON_KEY_UNKNOWN: DenyReason
DENY_REASON_KEY_REVOKED: DenyReason
DENY_REASON_KEY_FROZEN: DenyReason
DENY_REASON_KEY_EXPIRED: DenyReason
DENY_REASON_SCOPE_DENIED: DenyReason
DENY_REASON_ENDPOINT_DENIED: DenyReason
DENY_REASON_VENDOR_DENIED: DenyReason
DENY_REASON_CONSTRAINT_DENIED: DenyReason
DENY_REASON_RATE_LIMITED: DenyReason
DENY_REASON_SPEND_CAP_EXCEEDED: DenyReason
DENY_REASON_RUN_CAP_EXCEEDED: DenyReason
DENY_REASON_PER_CALL_CAP_EXCEEDED: DenyReason
DENY_REASON_CALLS_EXHAUSTED: DenyReason
DENY_REASON_TENANT_THROTTLED: DenyReason
DENY_REASON_MODEL_UNKNOWN: DenyReason
DENY_REASON_FX_RATE_UNKNOWN: DenyReason
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INVALID_ARGUMENT: ErrorReason
ERROR_REASON_UNAUTHENTICATED: ErrorReason
ERROR_REASON_PERMISSION_DENIED: ErrorReason
ERROR_REASON_EXCEEDS_PARENT: ErrorReason
ERROR_REASON_KEY_NOT_FOUND: ErrorReason
ERROR_REASON_KEY_STATE: ErrorReason
ERROR_REASON_DEPTH_EXCEEDED: ErrorReason
ERROR_REASON_REQUEST_ID_REUSED: ErrorReason
ERROR_REASON_STORE_UNAVAILABLE: ErrorReason
ERROR_REASON_TOO_MANY_ATTEMPTS: ErrorReason
ERROR_REASON_NOT_IMPLEMENTED: ErrorReason
ERROR_REASON_AUDIT_BACKLOG_FULL: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
ERROR_REASON_NOT_FOUND: ErrorReason
ERROR_REASON_FAILED_PRECONDITION: ErrorReason
ERROR_REASON_STORE_TIMEOUT: ErrorReason
ERROR_REASON_CONNECTION_NOT_FOUND: ErrorReason
ERROR_REASON_SECRETS_KEY_UNAVAILABLE: ErrorReason
ERROR_REASON_CONNECTION_EXISTS: ErrorReason
ERROR_REASON_EXCEEDS_TEMPLATE: ErrorReason
ERROR_REASON_TEMPLATE_EXISTS: ErrorReason

class Key(_message.Message):
    __slots__ = ("name", "key_id", "tenant_id", "parent_key_id", "agent_id", "label", "scopes", "policy", "state", "create_time", "expire_time", "revoke_time", "revoke_reason", "metadata", "depth")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Key.State]
        STATE_ACTIVE: _ClassVar[Key.State]
        STATE_FROZEN: _ClassVar[Key.State]
        STATE_REVOKED: _ClassVar[Key.State]
        STATE_EXPIRED: _ClassVar[Key.State]
    STATE_UNSPECIFIED: Key.State
    STATE_ACTIVE: Key.State
    STATE_FROZEN: Key.State
    STATE_REVOKED: Key.State
    STATE_EXPIRED: Key.State
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_REASON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    key_id: str
    tenant_id: str
    parent_key_id: str
    agent_id: str
    label: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    policy: Policy
    state: Key.State
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    revoke_reason: str
    metadata: _containers.ScalarMap[str, str]
    depth: int
    def __init__(self, name: _Optional[str] = ..., key_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., parent_key_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., label: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., state: _Optional[_Union[Key.State, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_reason: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., depth: _Optional[int] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("rate_limits", "spend_caps", "max_cost_per_call", "run_spend_cap", "allowed_endpoints", "allowed_vendors", "constraints", "max_calls", "approval_on_denial")
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    SPEND_CAPS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_PER_CALL_FIELD_NUMBER: _ClassVar[int]
    RUN_SPEND_CAP_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VENDORS_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_CALLS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ON_DENIAL_FIELD_NUMBER: _ClassVar[int]
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimit]
    spend_caps: _containers.RepeatedCompositeFieldContainer[SpendCap]
    max_cost_per_call: _money_pb2.Money
    run_spend_cap: _money_pb2.Money
    allowed_endpoints: _containers.RepeatedScalarFieldContainer[str]
    allowed_vendors: _containers.RepeatedScalarFieldContainer[str]
    constraints: _containers.RepeatedCompositeFieldContainer[AttributeConstraint]
    max_calls: int
    approval_on_denial: bool
    def __init__(self, rate_limits: _Optional[_Iterable[_Union[RateLimit, _Mapping]]] = ..., spend_caps: _Optional[_Iterable[_Union[SpendCap, _Mapping]]] = ..., max_cost_per_call: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., run_spend_cap: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., allowed_endpoints: _Optional[_Iterable[str]] = ..., allowed_vendors: _Optional[_Iterable[str]] = ..., constraints: _Optional[_Iterable[_Union[AttributeConstraint, _Mapping]]] = ..., max_calls: _Optional[int] = ..., approval_on_denial: _Optional[bool] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("limit", "window")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    limit: int
    window: _duration_pb2.Duration
    def __init__(self, limit: _Optional[int] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SpendCap(_message.Message):
    __slots__ = ("limit", "window")
    class Window(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        WINDOW_UNSPECIFIED: _ClassVar[SpendCap.Window]
        WINDOW_ROLLING_24H: _ClassVar[SpendCap.Window]
        WINDOW_CALENDAR_DAY: _ClassVar[SpendCap.Window]
        WINDOW_CALENDAR_MONTH: _ClassVar[SpendCap.Window]
        WINDOW_LIFETIME: _ClassVar[SpendCap.Window]
    WINDOW_UNSPECIFIED: SpendCap.Window
    WINDOW_ROLLING_24H: SpendCap.Window
    WINDOW_CALENDAR_DAY: SpendCap.Window
    WINDOW_CALENDAR_MONTH: SpendCap.Window
    WINDOW_LIFETIME: SpendCap.Window
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    limit: _money_pb2.Money
    window: SpendCap.Window
    def __init__(self, limit: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., window: _Optional[_Union[SpendCap.Window, str]] = ...) -> None: ...

class AttributeConstraint(_message.Message):
    __slots__ = ("attribute", "allowed_values")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VALUES_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    allowed_values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, attribute: _Optional[str] = ..., allowed_values: _Optional[_Iterable[str]] = ...) -> None: ...

class MintKeyRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id", "label", "scopes", "policy", "ttl", "metadata", "request_id", "template")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    label: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    policy: Policy
    ttl: _duration_pb2.Duration
    metadata: _containers.ScalarMap[str, str]
    request_id: str
    template: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., label: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., template: _Optional[str] = ...) -> None: ...

class MintKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: Key
    secret: str
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("key", "scope", "vendor", "method", "path", "estimated_cost", "agent_run_id", "attributes", "request_id")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    key: str
    scope: str
    vendor: str
    method: str
    path: str
    estimated_cost: _money_pb2.Money
    agent_run_id: str
    attributes: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, key: _Optional[str] = ..., scope: _Optional[str] = ..., vendor: _Optional[str] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., estimated_cost: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., agent_run_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class AuthorizeBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[AuthorizeRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[AuthorizeRequest, _Mapping]]] = ...) -> None: ...

class AuthorizeBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[AuthorizeResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[AuthorizeResponse, _Mapping]]] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("decision", "reason", "message", "key_id", "tenant_id", "reservation_id", "quotas", "retry_after", "decision_id", "approval", "connections_version")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_VERSION_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    reason: DenyReason
    message: str
    key_id: str
    tenant_id: str
    reservation_id: str
    quotas: _containers.RepeatedCompositeFieldContainer[QuotaStatus]
    retry_after: _duration_pb2.Duration
    decision_id: str
    approval: str
    connections_version: str
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., reason: _Optional[_Union[DenyReason, str]] = ..., message: _Optional[str] = ..., key_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., reservation_id: _Optional[str] = ..., quotas: _Optional[_Iterable[_Union[QuotaStatus, _Mapping]]] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., decision_id: _Optional[str] = ..., approval: _Optional[str] = ..., connections_version: _Optional[str] = ...) -> None: ...

class QuotaStatus(_message.Message):
    __slots__ = ("subject", "quota", "unit", "limit", "used", "remaining", "reset_time")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESET_TIME_FIELD_NUMBER: _ClassVar[int]
    subject: str
    quota: str
    unit: str
    limit: int
    used: int
    remaining: int
    reset_time: _timestamp_pb2.Timestamp
    def __init__(self, subject: _Optional[str] = ..., quota: _Optional[str] = ..., unit: _Optional[str] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ..., remaining: _Optional[int] = ..., reset_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValidateKeyRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class ValidateKeyResponse(_message.Message):
    __slots__ = ("valid", "reason", "key")
    VALID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    reason: DenyReason
    key: Key
    def __init__(self, valid: _Optional[bool] = ..., reason: _Optional[_Union[DenyReason, str]] = ..., key: _Optional[_Union[Key, _Mapping]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokeKeyResponse(_message.Message):
    __slots__ = ("key", "revoked_descendants")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_DESCENDANTS_FIELD_NUMBER: _ClassVar[int]
    key: Key
    revoked_descendants: int
    def __init__(self, key: _Optional[_Union[Key, _Mapping]] = ..., revoked_descendants: _Optional[int] = ...) -> None: ...

class FreezeKeyRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UnfreezeKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateKeyPolicyRequest(_message.Message):
    __slots__ = ("name", "policy", "update_mask", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    policy: Policy
    update_mask: _field_mask_pb2.FieldMask
    reason: str
    def __init__(self, name: _Optional[str] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("tenant_id", "parent_key_id", "label_prefix", "state", "page_size", "page_token", "agent_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_PREFIX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    parent_key_id: str
    label_prefix: str
    state: Key.State
    page_size: int
    page_token: str
    agent_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., parent_key_id: _Optional[str] = ..., label_prefix: _Optional[str] = ..., state: _Optional[_Union[Key.State, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Authorization(_message.Message):
    __slots__ = ("decision_id", "decision_time", "tenant_id", "key_id", "parent_key_id", "agent_id", "agent_run_id", "trace_id", "scope", "vendor", "method", "path", "estimated_cost", "decision", "reason", "quota", "reservation_id", "request_id", "settled_cost", "settled_events", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SETTLED_COST_FIELD_NUMBER: _ClassVar[int]
    SETTLED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    decision_time: _timestamp_pb2.Timestamp
    tenant_id: str
    key_id: str
    parent_key_id: str
    agent_id: str
    agent_run_id: str
    trace_id: str
    scope: str
    vendor: str
    method: str
    path: str
    estimated_cost: _money_pb2.Money
    decision: Decision
    reason: DenyReason
    quota: QuotaStatus
    reservation_id: str
    request_id: str
    settled_cost: _money_pb2.Money
    settled_events: int
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, decision_id: _Optional[str] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., parent_key_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., scope: _Optional[str] = ..., vendor: _Optional[str] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., estimated_cost: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., decision: _Optional[_Union[Decision, str]] = ..., reason: _Optional[_Union[DenyReason, str]] = ..., quota: _Optional[_Union[QuotaStatus, _Mapping]] = ..., reservation_id: _Optional[str] = ..., request_id: _Optional[str] = ..., settled_cost: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., settled_events: _Optional[int] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListAuthorizationsRequest(_message.Message):
    __slots__ = ("tenant_id", "key_name", "agent_run_id", "decision", "reason", "start_time", "end_time", "page_size", "page_token", "order_by")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    key_name: str
    agent_run_id: str
    decision: Decision
    reason: DenyReason
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    order_by: str
    def __init__(self, tenant_id: _Optional[str] = ..., key_name: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., reason: _Optional[_Union[DenyReason, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListAuthorizationsResponse(_message.Message):
    __slots__ = ("authorizations", "next_page_token")
    AUTHORIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    authorizations: _containers.RepeatedCompositeFieldContainer[Authorization]
    next_page_token: str
    def __init__(self, authorizations: _Optional[_Iterable[_Union[Authorization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Connection(_message.Message):
    __slots__ = ("name", "connection_id", "tenant_id", "vendor", "base_url", "create_time", "rotate_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ROTATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    connection_id: str
    tenant_id: str
    vendor: str
    base_url: str
    create_time: _timestamp_pb2.Timestamp
    rotate_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., connection_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., vendor: _Optional[str] = ..., base_url: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rotate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateConnectionRequest(_message.Message):
    __slots__ = ("tenant_id", "connection", "secret", "request_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    connection: Connection
    secret: str
    request_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., connection: _Optional[_Union[Connection, _Mapping]] = ..., secret: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetConnectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListConnectionsRequest(_message.Message):
    __slots__ = ("tenant_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConnectionsResponse(_message.Message):
    __slots__ = ("connections", "next_page_token")
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[Connection]
    next_page_token: str
    def __init__(self, connections: _Optional[_Iterable[_Union[Connection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RotateConnectionSecretRequest(_message.Message):
    __slots__ = ("name", "secret")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    name: str
    secret: str
    def __init__(self, name: _Optional[str] = ..., secret: _Optional[str] = ...) -> None: ...

class DeleteConnectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteConnectionResponse(_message.Message):
    __slots__ = ("connection",)
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class AccessConnectionSecretRequest(_message.Message):
    __slots__ = ("key", "vendor", "name")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    key: str
    vendor: str
    name: str
    def __init__(self, key: _Optional[str] = ..., vendor: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class AccessConnectionSecretResponse(_message.Message):
    __slots__ = ("connection", "secret", "key_id", "connections_version")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_VERSION_FIELD_NUMBER: _ClassVar[int]
    connection: Connection
    secret: str
    key_id: str
    connections_version: str
    def __init__(self, connection: _Optional[_Union[Connection, _Mapping]] = ..., secret: _Optional[str] = ..., key_id: _Optional[str] = ..., connections_version: _Optional[str] = ...) -> None: ...

class GetKeyUsageRequest(_message.Message):
    __slots__ = ("name", "agent_run_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    agent_run_id: str
    def __init__(self, name: _Optional[str] = ..., agent_run_id: _Optional[str] = ...) -> None: ...

class GetKeyUsageResponse(_message.Message):
    __slots__ = ("keys", "read_time")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyUsage]
    read_time: _timestamp_pb2.Timestamp
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyUsage, _Mapping]]] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class KeyUsage(_message.Message):
    __slots__ = ("name", "state", "quotas", "open_holds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    OPEN_HOLDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: Key.State
    quotas: _containers.RepeatedCompositeFieldContainer[QuotaStatus]
    open_holds: _containers.RepeatedCompositeFieldContainer[Hold]
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[Key.State, str]] = ..., quotas: _Optional[_Iterable[_Union[QuotaStatus, _Mapping]]] = ..., open_holds: _Optional[_Iterable[_Union[Hold, _Mapping]]] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("reservation_id", "amount", "agent_run_id", "create_time", "decision_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    amount: _money_pb2.Money
    agent_run_id: str
    create_time: _timestamp_pb2.Timestamp
    decision_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., agent_run_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decision_id: _Optional[str] = ...) -> None: ...

class ListKeyEventsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListKeyEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[KeyEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[KeyEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class KeyEvent(_message.Message):
    __slots__ = ("action", "event_time", "actor", "reason", "details_json", "event_id")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    action: str
    event_time: _timestamp_pb2.Timestamp
    actor: str
    reason: str
    details_json: str
    event_id: int
    def __init__(self, action: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., details_json: _Optional[str] = ..., event_id: _Optional[int] = ...) -> None: ...

class PolicyTemplate(_message.Message):
    __slots__ = ("name", "display_name", "description", "scopes", "policy", "ttl", "vendor_keys", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    VENDOR_KEYS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    policy: Policy
    ttl: _duration_pb2.Duration
    vendor_keys: _containers.RepeatedCompositeFieldContainer[VendorKeyTemplate]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., vendor_keys: _Optional[_Iterable[_Union[VendorKeyTemplate, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VendorKeyTemplate(_message.Message):
    __slots__ = ("vendor", "scopes", "policy")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    vendor: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    policy: Policy
    def __init__(self, vendor: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class CreatePolicyTemplateRequest(_message.Message):
    __slots__ = ("tenant_id", "template_id", "template", "request_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    template_id: str
    template: PolicyTemplate
    request_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., template_id: _Optional[str] = ..., template: _Optional[_Union[PolicyTemplate, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetPolicyTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListPolicyTemplatesRequest(_message.Message):
    __slots__ = ("tenant_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPolicyTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[PolicyTemplate]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[PolicyTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeletePolicyTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeletePolicyTemplateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProvisionAgentRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id", "template", "label", "request_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    template: str
    label: str
    request_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., template: _Optional[str] = ..., label: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ProvisionAgentResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[MintKeyResponse]
    def __init__(self, keys: _Optional[_Iterable[_Union[MintKeyResponse, _Mapping]]] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("name", "approval_id", "tenant_id", "key", "capped_key", "quota", "agent_run_id", "amount", "reason", "state", "granted", "create_time", "expire_time", "decide_time", "decided_by", "decision_reason", "grant_end_time", "requested_by", "window_id")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Approval.State]
        STATE_PENDING: _ClassVar[Approval.State]
        STATE_APPROVED: _ClassVar[Approval.State]
        STATE_DENIED: _ClassVar[Approval.State]
        STATE_EXPIRED: _ClassVar[Approval.State]
    STATE_UNSPECIFIED: Approval.State
    STATE_PENDING: Approval.State
    STATE_APPROVED: Approval.State
    STATE_DENIED: Approval.State
    STATE_EXPIRED: Approval.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECISION_REASON_FIELD_NUMBER: _ClassVar[int]
    GRANT_END_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    approval_id: str
    tenant_id: str
    key: str
    capped_key: str
    quota: str
    agent_run_id: str
    amount: _money_pb2.Money
    reason: str
    state: Approval.State
    granted: _money_pb2.Money
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    decide_time: _timestamp_pb2.Timestamp
    decided_by: str
    decision_reason: str
    grant_end_time: _timestamp_pb2.Timestamp
    requested_by: str
    window_id: str
    def __init__(self, name: _Optional[str] = ..., approval_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., key: _Optional[str] = ..., capped_key: _Optional[str] = ..., quota: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ..., state: _Optional[_Union[Approval.State, str]] = ..., granted: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ..., decision_reason: _Optional[str] = ..., grant_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requested_by: _Optional[str] = ..., window_id: _Optional[str] = ...) -> None: ...

class CreateApprovalRequest(_message.Message):
    __slots__ = ("key", "quota", "amount", "reason", "agent_run_id", "capped_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    quota: str
    amount: _money_pb2.Money
    reason: str
    agent_run_id: str
    capped_key: str
    def __init__(self, key: _Optional[str] = ..., quota: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., capped_key: _Optional[str] = ...) -> None: ...

class GetApprovalRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListApprovalsRequest(_message.Message):
    __slots__ = ("tenant_id", "state", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    state: Approval.State
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., state: _Optional[_Union[Approval.State, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListApprovalsResponse(_message.Message):
    __slots__ = ("approvals", "next_page_token")
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    next_page_token: str
    def __init__(self, approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApproveApprovalRequest(_message.Message):
    __slots__ = ("name", "amount", "reason", "link_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LINK_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    amount: _money_pb2.Money
    reason: str
    link_token: str
    def __init__(self, name: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ..., link_token: _Optional[str] = ...) -> None: ...

class DenyApprovalRequest(_message.Message):
    __slots__ = ("name", "reason", "link_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LINK_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    link_token: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ..., link_token: _Optional[str] = ...) -> None: ...
