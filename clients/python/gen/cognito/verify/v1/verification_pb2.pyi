from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
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
