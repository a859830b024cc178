import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from keyleash.metering.v1 import alerts_pb2 as _alerts_pb2
from keyleash.type.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_ARGUMENT: _ClassVar[ErrorReason]
    ERROR_REASON_UNAUTHENTICATED: _ClassVar[ErrorReason]
    ERROR_REASON_PERMISSION_DENIED: _ClassVar[ErrorReason]
    ERROR_REASON_REQUEST_ID_REUSED: _ClassVar[ErrorReason]
    ERROR_REASON_KEY_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_UNKNOWN_MODEL: _ClassVar[ErrorReason]
    ERROR_REASON_RESERVATION_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_STORE_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_NOT_IMPLEMENTED: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_NOT_FOUND: _ClassVar[ErrorReason]
    ERROR_REASON_FAILED_PRECONDITION: _ClassVar[ErrorReason]
    ERROR_REASON_STORE_TIMEOUT: _ClassVar[ErrorReason]
    ERROR_REASON_TOO_MANY_ATTEMPTS: _ClassVar[ErrorReason]
    ERROR_REASON_FX_RATE_UNKNOWN: _ClassVar[ErrorReason]

class BillingEventView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BILLING_EVENT_VIEW_UNSPECIFIED: _ClassVar[BillingEventView]
    BILLING_EVENT_VIEW_BASIC: _ClassVar[BillingEventView]
    BILLING_EVENT_VIEW_FULL: _ClassVar[BillingEventView]
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_INVALID_ARGUMENT: ErrorReason
ERROR_REASON_UNAUTHENTICATED: ErrorReason
ERROR_REASON_PERMISSION_DENIED: ErrorReason
ERROR_REASON_REQUEST_ID_REUSED: ErrorReason
ERROR_REASON_KEY_NOT_FOUND: ErrorReason
ERROR_REASON_UNKNOWN_MODEL: ErrorReason
ERROR_REASON_RESERVATION_NOT_FOUND: ErrorReason
ERROR_REASON_STORE_UNAVAILABLE: ErrorReason
ERROR_REASON_NOT_IMPLEMENTED: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
ERROR_REASON_NOT_FOUND: ErrorReason
ERROR_REASON_FAILED_PRECONDITION: ErrorReason
ERROR_REASON_STORE_TIMEOUT: ErrorReason
ERROR_REASON_TOO_MANY_ATTEMPTS: ErrorReason
ERROR_REASON_FX_RATE_UNKNOWN: ErrorReason
BILLING_EVENT_VIEW_UNSPECIFIED: BillingEventView
BILLING_EVENT_VIEW_BASIC: BillingEventView
BILLING_EVENT_VIEW_FULL: BillingEventView

class ChargeRequest(_message.Message):
    __slots__ = ("request_id", "key_id", "reservation_id", "amount", "vendor", "endpoint", "reason", "agent_run_id", "vendor_request_id", "cost_source", "attributes", "occur_time", "model", "input_tokens", "output_tokens", "cached_input_tokens")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    VENDOR_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COST_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_id: str
    reservation_id: str
    amount: _money_pb2.Money
    vendor: str
    endpoint: str
    reason: str
    agent_run_id: str
    vendor_request_id: str
    cost_source: str
    attributes: _containers.ScalarMap[str, str]
    occur_time: _timestamp_pb2.Timestamp
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    def __init__(self, request_id: _Optional[str] = ..., key_id: _Optional[str] = ..., reservation_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., vendor: _Optional[str] = ..., endpoint: _Optional[str] = ..., reason: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., vendor_request_id: _Optional[str] = ..., cost_source: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ...) -> None: ...

class ChargeResponse(_message.Message):
    __slots__ = ("event", "duplicate", "tenant")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    event: BillingEvent
    duplicate: bool
    tenant: Tenant
    def __init__(self, event: _Optional[_Union[BillingEvent, _Mapping]] = ..., duplicate: _Optional[bool] = ..., tenant: _Optional[_Union[Tenant, _Mapping]] = ...) -> None: ...

class BatchChargeRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ChargeRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[ChargeRequest, _Mapping]]] = ...) -> None: ...

class BatchChargeResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[ChargeResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[ChargeResponse, _Mapping]]] = ...) -> None: ...

class RecordUsageRequest(_message.Message):
    __slots__ = ("request_id", "key_id", "agent_run_id", "model", "input_tokens", "output_tokens", "cached_input_tokens", "occur_time", "reservation_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_id: str
    agent_run_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    occur_time: _timestamp_pb2.Timestamp
    reservation_id: str
    def __init__(self, request_id: _Optional[str] = ..., key_id: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reservation_id: _Optional[str] = ...) -> None: ...

class RecordUsageResponse(_message.Message):
    __slots__ = ("event", "duplicate", "tenant")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    event: BillingEvent
    duplicate: bool
    tenant: Tenant
    def __init__(self, event: _Optional[_Union[BillingEvent, _Mapping]] = ..., duplicate: _Optional[bool] = ..., tenant: _Optional[_Union[Tenant, _Mapping]] = ...) -> None: ...

class UsageAck(_message.Message):
    __slots__ = ("request_ids", "accepted", "duplicates")
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    accepted: int
    duplicates: int
    def __init__(self, request_ids: _Optional[_Iterable[str]] = ..., accepted: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class BillingEvent(_message.Message):
    __slots__ = ("event_id", "request_id", "tenant_id", "key_id", "parent_key_id", "agent_id", "agent_run_id", "trace_id", "kind", "amount", "vendor", "endpoint", "model", "input_tokens", "output_tokens", "reason", "cost_source", "occur_time", "record_time", "reservation_id", "vendor_request_id", "cached_input_tokens", "attributes", "converted_amounts")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[BillingEvent.Kind]
        KIND_CHARGE: _ClassVar[BillingEvent.Kind]
        KIND_USAGE: _ClassVar[BillingEvent.Kind]
        KIND_REFUND: _ClassVar[BillingEvent.Kind]
        KIND_RELEASE: _ClassVar[BillingEvent.Kind]
    KIND_UNSPECIFIED: BillingEvent.Kind
    KIND_CHARGE: BillingEvent.Kind
    KIND_USAGE: BillingEvent.Kind
    KIND_REFUND: BillingEvent.Kind
    KIND_RELEASE: BillingEvent.Kind
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COST_SOURCE_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    RECORD_TIME_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    VENDOR_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    request_id: str
    tenant_id: str
    key_id: str
    parent_key_id: str
    agent_id: str
    agent_run_id: str
    trace_id: str
    kind: BillingEvent.Kind
    amount: _money_pb2.Money
    vendor: str
    endpoint: str
    model: str
    input_tokens: int
    output_tokens: int
    reason: str
    cost_source: str
    occur_time: _timestamp_pb2.Timestamp
    record_time: _timestamp_pb2.Timestamp
    reservation_id: str
    vendor_request_id: str
    cached_input_tokens: int
    attributes: _containers.ScalarMap[str, str]
    converted_amounts: _containers.RepeatedCompositeFieldContainer[ConvertedAmount]
    def __init__(self, event_id: _Optional[str] = ..., request_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., parent_key_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., kind: _Optional[_Union[BillingEvent.Kind, str]] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., vendor: _Optional[str] = ..., endpoint: _Optional[str] = ..., model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., reason: _Optional[str] = ..., cost_source: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reservation_id: _Optional[str] = ..., vendor_request_id: _Optional[str] = ..., cached_input_tokens: _Optional[int] = ..., attributes: _Optional[_Mapping[str, str]] = ..., converted_amounts: _Optional[_Iterable[_Union[ConvertedAmount, _Mapping]]] = ...) -> None: ...

class GetSpendRequest(_message.Message):
    __slots__ = ("tenant_id", "key_name", "agent_id", "agent_run_id", "subject_tenant_id", "start_time", "end_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    key_name: str
    agent_id: str
    agent_run_id: str
    subject_tenant_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., key_name: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., subject_tenant_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSpendResponse(_message.Message):
    __slots__ = ("totals", "event_count")
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    totals: _containers.RepeatedCompositeFieldContainer[_money_pb2.Money]
    event_count: int
    def __init__(self, totals: _Optional[_Iterable[_Union[_money_pb2.Money, _Mapping]]] = ..., event_count: _Optional[int] = ...) -> None: ...

class BillingEventFilter(_message.Message):
    __slots__ = ("tenant_id", "key_id", "agent_run_id", "start_time", "end_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    key_id: str
    agent_run_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., agent_run_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListBillingEventsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token", "order_by")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    filter: BillingEventFilter
    page_size: int
    page_token: str
    order_by: str
    def __init__(self, filter: _Optional[_Union[BillingEventFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListBillingEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[BillingEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[BillingEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportBillingEventsRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: BillingEventFilter
    def __init__(self, filter: _Optional[_Union[BillingEventFilter, _Mapping]] = ...) -> None: ...

class Tenant(_message.Message):
    __slots__ = ("tenant_id", "daily_threshold", "spend_today", "throttled", "throttled_until")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DAILY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SPEND_TODAY_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    daily_threshold: _money_pb2.Money
    spend_today: _money_pb2.Money
    throttled: bool
    throttled_until: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., daily_threshold: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., spend_today: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., throttled: _Optional[bool] = ..., throttled_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetTenantBudgetRequest(_message.Message):
    __slots__ = ("tenant_id", "daily_threshold", "lift_throttle")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DAILY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    LIFT_THROTTLE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    daily_threshold: _money_pb2.Money
    lift_throttle: bool
    def __init__(self, tenant_id: _Optional[str] = ..., daily_threshold: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., lift_throttle: _Optional[bool] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class ModelPrice(_message.Message):
    __slots__ = ("tenant_id", "model", "input_per_million_micros", "output_per_million_micros", "cached_input_per_million_micros", "source")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_PER_MILLION_MICROS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PER_MILLION_MICROS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_PER_MILLION_MICROS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    model: str
    input_per_million_micros: int
    output_per_million_micros: int
    cached_input_per_million_micros: int
    source: str
    def __init__(self, tenant_id: _Optional[str] = ..., model: _Optional[str] = ..., input_per_million_micros: _Optional[int] = ..., output_per_million_micros: _Optional[int] = ..., cached_input_per_million_micros: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class SetTenantModelPriceRequest(_message.Message):
    __slots__ = ("tenant_id", "model", "input_per_million_micros", "output_per_million_micros", "cached_input_per_million_micros", "clear")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_PER_MILLION_MICROS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PER_MILLION_MICROS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_PER_MILLION_MICROS_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    model: str
    input_per_million_micros: int
    output_per_million_micros: int
    cached_input_per_million_micros: int
    clear: bool
    def __init__(self, tenant_id: _Optional[str] = ..., model: _Optional[str] = ..., input_per_million_micros: _Optional[int] = ..., output_per_million_micros: _Optional[int] = ..., cached_input_per_million_micros: _Optional[int] = ..., clear: _Optional[bool] = ...) -> None: ...

class UsageWebhookSecret(_message.Message):
    __slots__ = ("name", "tenant_id", "create_time", "rotate_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ROTATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    tenant_id: str
    create_time: _timestamp_pb2.Timestamp
    rotate_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., tenant_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rotate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateUsageWebhookSecretRequest(_message.Message):
    __slots__ = ("tenant_id", "signing_secret")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    signing_secret: str
    def __init__(self, tenant_id: _Optional[str] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class CreateUsageWebhookSecretResponse(_message.Message):
    __slots__ = ("secret", "signing_secret")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: UsageWebhookSecret
    signing_secret: str
    def __init__(self, secret: _Optional[_Union[UsageWebhookSecret, _Mapping]] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class RotateUsageWebhookSecretRequest(_message.Message):
    __slots__ = ("tenant_id", "signing_secret")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    signing_secret: str
    def __init__(self, tenant_id: _Optional[str] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class RotateUsageWebhookSecretResponse(_message.Message):
    __slots__ = ("secret", "signing_secret")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: UsageWebhookSecret
    signing_secret: str
    def __init__(self, secret: _Optional[_Union[UsageWebhookSecret, _Mapping]] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class AccessUsageWebhookSecretRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class AccessUsageWebhookSecretResponse(_message.Message):
    __slots__ = ("secret", "signing_secret")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: UsageWebhookSecret
    signing_secret: str
    def __init__(self, secret: _Optional[_Union[UsageWebhookSecret, _Mapping]] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class BatchRecordUsageRequest(_message.Message):
    __slots__ = ("tenant_id", "requests", "view")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    requests: _containers.RepeatedCompositeFieldContainer[RecordUsageRequest]
    view: BillingEventView
    def __init__(self, tenant_id: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[RecordUsageRequest, _Mapping]]] = ..., view: _Optional[_Union[BillingEventView, str]] = ...) -> None: ...

class BatchRecordUsageResponse(_message.Message):
    __slots__ = ("responses", "tenant", "accepted", "duplicates")
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[RecordUsageResponse]
    tenant: Tenant
    accepted: int
    duplicates: int
    def __init__(self, responses: _Optional[_Iterable[_Union[RecordUsageResponse, _Mapping]]] = ..., tenant: _Optional[_Union[Tenant, _Mapping]] = ..., accepted: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class ConvertedAmount(_message.Message):
    __slots__ = ("amount", "rate", "fx_table_version")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    FX_TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    amount: _money_pb2.Money
    rate: str
    fx_table_version: str
    def __init__(self, amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., rate: _Optional[str] = ..., fx_table_version: _Optional[str] = ...) -> None: ...

class ExchangeRate(_message.Message):
    __slots__ = ("base_currency_code", "quote_currency_code", "rate", "source", "fx_table_version")
    BASE_CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FX_TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    base_currency_code: str
    quote_currency_code: str
    rate: str
    source: str
    fx_table_version: str
    def __init__(self, base_currency_code: _Optional[str] = ..., quote_currency_code: _Optional[str] = ..., rate: _Optional[str] = ..., source: _Optional[str] = ..., fx_table_version: _Optional[str] = ...) -> None: ...

class SetExchangeRateRequest(_message.Message):
    __slots__ = ("base_currency_code", "quote_currency_code", "rate")
    BASE_CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    base_currency_code: str
    quote_currency_code: str
    rate: str
    def __init__(self, base_currency_code: _Optional[str] = ..., quote_currency_code: _Optional[str] = ..., rate: _Optional[str] = ...) -> None: ...

class ListExchangeRatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListExchangeRatesResponse(_message.Message):
    __slots__ = ("rates", "fx_table_version")
    RATES_FIELD_NUMBER: _ClassVar[int]
    FX_TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    rates: _containers.RepeatedCompositeFieldContainer[ExchangeRate]
    fx_table_version: str
    def __init__(self, rates: _Optional[_Iterable[_Union[ExchangeRate, _Mapping]]] = ..., fx_table_version: _Optional[str] = ...) -> None: ...

class GetTenantModelPriceRequest(_message.Message):
    __slots__ = ("tenant_id", "model")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    model: str
    def __init__(self, tenant_id: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...
