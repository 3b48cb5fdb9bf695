import datetime

from cognito.verify.v1 import error_reason_pb2 as _error_reason_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryMedium(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_MEDIUM_UNSPECIFIED: _ClassVar[DeliveryMedium]
    DELIVERY_MEDIUM_SMS: _ClassVar[DeliveryMedium]
    DELIVERY_MEDIUM_EMAIL: _ClassVar[DeliveryMedium]
DELIVERY_MEDIUM_UNSPECIFIED: DeliveryMedium
DELIVERY_MEDIUM_SMS: DeliveryMedium
DELIVERY_MEDIUM_EMAIL: DeliveryMedium

class GetUserAttributeVerificationCodeRequest(_message.Message):
    __slots__ = ("access_token", "attribute_name", "client_metadata", "request_id")
    class ClientMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    attribute_name: str
    client_metadata: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, access_token: _Optional[str] = ..., attribute_name: _Optional[str] = ..., client_metadata: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetUserAttributeVerificationCodeResponse(_message.Message):
    __slots__ = ("code_delivery_details",)
    CODE_DELIVERY_DETAILS_FIELD_NUMBER: _ClassVar[int]
    code_delivery_details: CodeDeliveryDetails
    def __init__(self, code_delivery_details: _Optional[_Union[CodeDeliveryDetails, _Mapping]] = ...) -> None: ...

class CodeDeliveryDetails(_message.Message):
    __slots__ = ("destination", "delivery_medium", "attribute_name")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_MEDIUM_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    destination: str
    delivery_medium: DeliveryMedium
    attribute_name: str
    def __init__(self, destination: _Optional[str] = ..., delivery_medium: _Optional[_Union[DeliveryMedium, str]] = ..., attribute_name: _Optional[str] = ...) -> None: ...

class VerifyUserAttributeRequest(_message.Message):
    __slots__ = ("access_token", "attribute_name", "code")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    attribute_name: str
    code: str
    def __init__(self, access_token: _Optional[str] = ..., attribute_name: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class VerifyUserAttributeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetVerificationStatusRequest(_message.Message):
    __slots__ = ("access_token",)
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    def __init__(self, access_token: _Optional[str] = ...) -> None: ...

class GetVerificationStatusResponse(_message.Message):
    __slots__ = ("attributes", "sends_left", "verify_attempts_left")
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SENDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    VERIFY_ATTEMPTS_LEFT_FIELD_NUMBER: _ClassVar[int]
    attributes: _containers.RepeatedCompositeFieldContainer[AttributeStatus]
    sends_left: int
    verify_attempts_left: int
    def __init__(self, attributes: _Optional[_Iterable[_Union[AttributeStatus, _Mapping]]] = ..., sends_left: _Optional[int] = ..., verify_attempts_left: _Optional[int] = ...) -> None: ...

class AttributeStatus(_message.Message):
    __slots__ = ("attribute_name", "present", "destination", "delivery_medium", "verified", "next_send_in", "send_blocked_by", "country")
    ATTRIBUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_MEDIUM_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEND_IN_FIELD_NUMBER: _ClassVar[int]
    SEND_BLOCKED_BY_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    attribute_name: str
    present: bool
    destination: str
    delivery_medium: DeliveryMedium
    verified: bool
    next_send_in: _duration_pb2.Duration
    send_blocked_by: _error_reason_pb2.ErrorReason
    country: str
    def __init__(self, attribute_name: _Optional[str] = ..., present: _Optional[bool] = ..., destination: _Optional[str] = ..., delivery_medium: _Optional[_Union[DeliveryMedium, str]] = ..., verified: _Optional[bool] = ..., next_send_in: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., send_blocked_by: _Optional[_Union[_error_reason_pb2.ErrorReason, str]] = ..., country: _Optional[str] = ...) -> None: ...
