"""Python client for cognito-verify (gRPC service cognito.verify.v1).

A thin layer over the generated stubs (package ``cognito.verify.v1``):
:func:`connect` makes the channel, :class:`Client` calls the three RPCs
(a code sent, a code checked, where the user stands) with a default deadline and the retries that are safe, and every failure of a call
is raised as one :class:`CognitoVerifyError`, decoded from the rich status.
"""
from ._client import (
    Client,
    CognitoVerifyError,
    FieldViolation,
    QuotaViolation,
    connect,
)
from cognito.verify.v1 import error_reason_pb2, verification_pb2

ErrorReason = error_reason_pb2.ErrorReason
DeliveryMedium = verification_pb2.DeliveryMedium

__all__ = [
    "Client",
    "CognitoVerifyError",
    "DeliveryMedium",
    "ErrorReason",
    "FieldViolation",
    "QuotaViolation",
    "connect",
]
