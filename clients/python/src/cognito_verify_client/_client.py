"""The channel, the error type and the client (see the package docstring)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence, TypeVar, Union

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cognito.verify.v1 import error_reason_pb2, verification_pb2, verification_pb2_grpc

DEFAULT_TIMEOUT = 10.0
"""The default deadline of one call (retries included), in seconds."""


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def connect(
    addr: str,
    *,
    plaintext: bool = False,
    ca_file: Optional[str] = None,
    cert_file: Optional[str] = None,
    key_file: Optional[str] = None,
    server_name: Optional[str] = None,
) -> grpc.Channel:
    """A channel to the service at ``addr`` (``host:port``).

    TLS by default, trusting ``ca_file`` (PEM) or the system's roots; with
    ``cert_file`` and ``key_file`` (PEM) also mTLS, the client certificate
    naming the caller. ``plaintext=True`` for a local ``cognito-verify dev``.
    ``server_name`` overrides the name the server's certificate must have.
    """
    if plaintext:
        if ca_file or cert_file or key_file:
            raise ValueError("plaintext takes no certificates")
        return grpc.insecure_channel(addr)
    if (cert_file is None) != (key_file is None):
        raise ValueError("mTLS needs both cert_file and key_file")
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file),
        private_key=_read(key_file),
        certificate_chain=_read(cert_file),
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(addr, creds, options=options)


@dataclass(frozen=True)
class FieldViolation:
    """A request field the service refused (google.rpc.BadRequest)."""

    field: str
    description: str


@dataclass(frozen=True)
class QuotaViolation:
    """A limit that was spent (google.rpc.QuotaFailure)."""

    subject: str
    description: str


@dataclass(repr=False)
class CognitoVerifyError(Exception):
    """Any failed call: the gRPC status and its decoded details.

    ``reason`` is the ``ErrorReason`` enum value of ``ErrorInfo.reason``, or
    ``ERROR_REASON_UNSPECIFIED`` when the service sent a reason this version
    does not know (an unrecognised Cognito error: see error_reason.proto) or
    none at all (a transport error); ``reason_name`` keeps the string as sent.
    ``retry_after`` (seconds) is set only when the status carries a
    RetryInfo, i.e. when the service says a retry is safe.
    """

    code: grpc.StatusCode
    message: str
    reason: int = error_reason_pb2.ERROR_REASON_UNSPECIFIED
    reason_name: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    retry_after: Optional[float] = None
    field_violations: Sequence[FieldViolation] = ()
    quota_violations: Sequence[QuotaViolation] = ()

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        s = f"{self.code.name}: {self.message}"
        if self.reason_name:
            s += f" [{self.reason_name}]"
        if self.retry_after is not None:
            s += f" (retry after {self.retry_after:.3f} s)"
        return s

    def __repr__(self) -> str:
        return (f"CognitoVerifyError(code={self.code.name}, reason={self.reason_name!r}, "
                f"domain={self.domain!r}, retry_after={self.retry_after!r})")

    @classmethod
    def from_status(cls, code: grpc.StatusCode, message: str,
                    details: Sequence = ()) -> "CognitoVerifyError":
        """Decodes a status's details (``google.protobuf.Any`` messages)."""
        err = cls(code=code, message=message)
        metadata: dict = {}
        fields, quotas = [], []
        for any_msg in details:
            if any_msg.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                any_msg.Unpack(info)
                err.reason_name, err.domain = info.reason, info.domain
                metadata.update(info.metadata)
                try:
                    err.reason = error_reason_pb2.ErrorReason.Value(info.reason)
                except ValueError:
                    err.reason = error_reason_pb2.ERROR_REASON_UNSPECIFIED
            elif any_msg.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                any_msg.Unpack(retry)
                err.retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
            elif any_msg.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                any_msg.Unpack(bad)
                fields += [FieldViolation(v.field, v.description) for v in bad.field_violations]
            elif any_msg.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                quota = error_details_pb2.QuotaFailure()
                any_msg.Unpack(quota)
                quotas += [QuotaViolation(v.subject, v.description) for v in quota.violations]
        err.metadata = metadata
        err.field_violations = tuple(fields)
        err.quota_violations = tuple(quotas)
        return err

    @classmethod
    def from_rpc_error(cls, e: grpc.RpcError) -> "CognitoVerifyError":
        """Decodes the error a stub raised (``grpc-status-details-bin``)."""
        code, message = e.code(), e.details() or ""  # type: ignore[attr-defined]
        try:
            status = rpc_status.from_call(e)  # type: ignore[arg-type]
        except ValueError:  # details that contradict the status: ignore them
            status = None
        if status is None:
            return cls(code=code, message=message)
        return cls.from_status(code, status.message, status.details)


# Verify is retried only on the statuses the service sends before it calls
# Cognito and that carry a RetryInfo (docs/errors.md): nothing was done.
_VERIFY_RETRYABLE = frozenset({
    error_reason_pb2.SIGNING_KEYS_UNAVAILABLE,
    error_reason_pb2.LIMITS_UNAVAILABLE,
    error_reason_pb2.RATE_LIMITED,
    error_reason_pb2.OVERLOADED,
    error_reason_pb2.USER_VERIFY_QUOTA,
})

T = TypeVar("T")


class Client:
    """The three RPCs, with a default deadline and only the safe retries.

    Each call takes ``timeout`` (seconds; default :data:`DEFAULT_TIMEOUT`):
    the deadline of the call and all its retries. A retry waits the delay the
    status's RetryInfo advises, and is not made when that wait would pass the
    deadline. A send is retried only with a ``request_id`` (the service then
    returns the first answer instead of sending again); a verify only on a
    RetryInfo status the service sends before it calls Cognito; a status read
    (which consumes nothing) on any status with a RetryInfo. Every failure
    is raised as :class:`CognitoVerifyError`. Tokens and codes are never
    logged nor part of an error.
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT,
                 max_attempts: int = 3, sleep: Callable[[float], None] = time.sleep) -> None:
        self._stub = verification_pb2_grpc.UserAttributeVerificationServiceStub(channel)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._sleep = sleep

    def get_user_attribute_verification_code(
        self,
        access_token: str,
        attribute_name: str,
        *,
        request_id: str = "",
        client_metadata: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> verification_pb2.GetUserAttributeVerificationCodeResponse:
        """Sends a code for ``attribute_name`` (``email`` or ``phone_number``)."""
        req = verification_pb2.GetUserAttributeVerificationCodeRequest(
            access_token=access_token, attribute_name=attribute_name,
            client_metadata=dict(client_metadata or {}), request_id=request_id)
        retryable: Callable[[CognitoVerifyError], bool] = (
            (lambda e: e.retry_after is not None) if request_id else (lambda e: False))
        return self._call(self._stub.GetUserAttributeVerificationCode, req, timeout, retryable)

    def verify_user_attribute(
        self, access_token: str, attribute_name: str, code: str, *,
        timeout: Optional[float] = None,
    ) -> verification_pb2.VerifyUserAttributeResponse:
        """Submits the ``code`` the user received for ``attribute_name``."""
        req = verification_pb2.VerifyUserAttributeRequest(
            access_token=access_token, attribute_name=attribute_name, code=code)
        return self._call(
            self._stub.VerifyUserAttribute, req, timeout,
            lambda e: e.retry_after is not None and e.reason in _VERIFY_RETRYABLE)

    def get_verification_status(
        self, access_token: str, *, timeout: Optional[float] = None,
    ) -> verification_pb2.GetVerificationStatusResponse:
        """Where the token's user stands, for ``email`` and ``phone_number``.

        Whether the user has each (masked), whether it is verified, when the
        next code could be sent and what would refuse it (``next_send_in``,
        ``send_blocked_by``); the codes and attempts left this hour. It reads
        only (no limit is consumed), so any status with a RetryInfo is
        retried.
        """
        req = verification_pb2.GetVerificationStatusRequest(access_token=access_token)
        return self._call(self._stub.GetVerificationStatus, req, timeout,
                          lambda e: e.retry_after is not None)

    def _call(self, method: Callable[..., T], req, timeout: Optional[float],
              retryable: Callable[[CognitoVerifyError], bool]) -> T:
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        attempt = 0
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise CognitoVerifyError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                         "the call's deadline passed")
            try:
                return method(req, timeout=left)
            except grpc.RpcError as e:
                err = CognitoVerifyError.from_rpc_error(e)
            # Raised from None: the RpcError's context would repeat nothing
            # new, and the request (with its token) is never part of it.
            if (attempt >= self._max_attempts or not retryable(err)
                    or time.monotonic() + (err.retry_after or 0) >= deadline):
                raise err from None
            self._sleep(err.retry_after or 0)
