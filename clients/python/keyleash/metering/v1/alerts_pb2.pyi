import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlertFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_FORMAT_UNSPECIFIED: _ClassVar[AlertFormat]
    ALERT_FORMAT_STANDARD: _ClassVar[AlertFormat]
    ALERT_FORMAT_SLACK: _ClassVar[AlertFormat]

class AlertDeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_DELIVERY_STATE_UNSPECIFIED: _ClassVar[AlertDeliveryState]
    ALERT_DELIVERY_STATE_PENDING: _ClassVar[AlertDeliveryState]
    ALERT_DELIVERY_STATE_DELIVERED: _ClassVar[AlertDeliveryState]
    ALERT_DELIVERY_STATE_DEAD: _ClassVar[AlertDeliveryState]
ALERT_FORMAT_UNSPECIFIED: AlertFormat
ALERT_FORMAT_STANDARD: AlertFormat
ALERT_FORMAT_SLACK: AlertFormat
ALERT_DELIVERY_STATE_UNSPECIFIED: AlertDeliveryState
ALERT_DELIVERY_STATE_PENDING: AlertDeliveryState
ALERT_DELIVERY_STATE_DELIVERED: AlertDeliveryState
ALERT_DELIVERY_STATE_DEAD: AlertDeliveryState

class AlertSubscription(_message.Message):
    __slots__ = ("name", "subscription_id", "tenant_id", "url", "event_types", "format", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    subscription_id: str
    tenant_id: str
    url: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    format: AlertFormat
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., subscription_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., url: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., format: _Optional[_Union[AlertFormat, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAlertSubscriptionRequest(_message.Message):
    __slots__ = ("tenant_id", "subscription", "signing_secret", "request_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    subscription: AlertSubscription
    signing_secret: str
    request_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., subscription: _Optional[_Union[AlertSubscription, _Mapping]] = ..., signing_secret: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateAlertSubscriptionResponse(_message.Message):
    __slots__ = ("subscription", "signing_secret")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    subscription: AlertSubscription
    signing_secret: str
    def __init__(self, subscription: _Optional[_Union[AlertSubscription, _Mapping]] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class ListAlertSubscriptionsRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class ListAlertSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[AlertSubscription]
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[AlertSubscription, _Mapping]]] = ...) -> None: ...

class DeleteAlertSubscriptionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteAlertSubscriptionResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: AlertSubscription
    def __init__(self, subscription: _Optional[_Union[AlertSubscription, _Mapping]] = ...) -> None: ...

class AlertDelivery(_message.Message):
    __slots__ = ("event_id", "subscription", "event_type", "state", "attempts", "last_status", "last_error", "create_time", "deliver_time", "payload")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVER_TIME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    subscription: str
    event_type: str
    state: AlertDeliveryState
    attempts: int
    last_status: int
    last_error: str
    create_time: _timestamp_pb2.Timestamp
    deliver_time: _timestamp_pb2.Timestamp
    payload: str
    def __init__(self, event_id: _Optional[str] = ..., subscription: _Optional[str] = ..., event_type: _Optional[str] = ..., state: _Optional[_Union[AlertDeliveryState, str]] = ..., attempts: _Optional[int] = ..., last_status: _Optional[int] = ..., last_error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deliver_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[str] = ...) -> None: ...

class ListAlertDeliveriesRequest(_message.Message):
    __slots__ = ("tenant_id", "subscription", "state", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    subscription: str
    state: AlertDeliveryState
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., subscription: _Optional[str] = ..., state: _Optional[_Union[AlertDeliveryState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_page_token")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[AlertDelivery]
    next_page_token: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[AlertDelivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
