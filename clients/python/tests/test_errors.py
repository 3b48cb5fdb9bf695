"""The error decoding, from constructed statuses, and the retry rules."""
import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2

from cognito_verify_client import Client, CognitoVerifyError, ErrorReason


def pack(msg):
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def cooldown_details():
    return [
        pack(error_details_pb2.ErrorInfo(reason="SEND_COOLDOWN", domain="cognito-verify",
                                         metadata={"attribute": "email"})),
        pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1, nanos=500_000_000))),
        pack(error_details_pb2.QuotaFailure(violations=[
            error_details_pb2.QuotaFailure.Violation(subject="user:attribute", description="wait")])),
    ]


def test_decodes_reason_retry_and_quota():
    err = CognitoVerifyError.from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", cooldown_details())
    assert err.reason == ErrorReason.Value("SEND_COOLDOWN")
    assert err.reason_name == "SEND_COOLDOWN"
    assert err.domain == "cognito-verify"
    assert err.metadata == {"attribute": "email"}
    assert err.retry_after == pytest.approx(1.5)
    assert [(q.subject, q.description) for q in err.quota_violations] == [("user:attribute", "wait")]
    assert err.field_violations == ()
    assert "SEND_COOLDOWN" in str(err) and "1.500" in str(err)


def test_decodes_field_violations():
    bad = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="code", description="does not match")])
    err = CognitoVerifyError.from_status(grpc.StatusCode.INVALID_ARGUMENT, "wrong code", [
        pack(error_details_pb2.ErrorInfo(reason="CODE_MISMATCH", domain="cognito-idp.amazonaws.com")), pack(bad)])
    assert err.reason == ErrorReason.Value("CODE_MISMATCH")
    assert [(f.field, f.description) for f in err.field_violations] == [("code", "does not match")]
    assert err.retry_after is None


def test_unknown_reason_keeps_the_string():
    err = CognitoVerifyError.from_status(grpc.StatusCode.UNKNOWN, "?", [
        pack(error_details_pb2.ErrorInfo(reason="BRAND_NEW", domain="cognito-idp.amazonaws.com",
                                         metadata={"awsErrorCode": "BrandNewException"}))])
    assert err.reason == ErrorReason.Value("ERROR_REASON_UNSPECIFIED")
    assert err.reason_name == "BRAND_NEW"
    assert err.metadata["awsErrorCode"] == "BrandNewException"


def test_no_details():
    err = CognitoVerifyError.from_status(grpc.StatusCode.UNAVAILABLE, "connection refused")
    assert err.reason_name == "" and err.retry_after is None and err.metadata == {}


class FakeRpcError(grpc.RpcError):
    """What the stubs raise: trailing metadata with the rich status."""

    def __init__(self, code, message, details):
        from google.rpc import status_pb2
        self._status = status_pb2.Status(code=code.value[0], message=message, details=details)
        self._code, self._message = code, message

    def code(self):
        return self._code

    def details(self):
        return self._message

    def trailing_metadata(self):
        return (("grpc-status-details-bin", self._status.SerializeToString()),)


def test_from_rpc_error_reads_the_trailer():
    err = CognitoVerifyError.from_rpc_error(
        FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", cooldown_details()))
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.reason_name == "SEND_COOLDOWN" and err.retry_after == pytest.approx(1.5)


class FakeStub:
    def __init__(self, errors):
        self.errors, self.calls = list(errors), []

    def __call__(self, req, timeout):
        self.calls.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def client_with(stub_method_name, stub):
    client = Client(grpc.insecure_channel("127.0.0.1:1"), timeout=10, sleep=lambda s: None)
    setattr(client._stub, stub_method_name, stub)
    return client


def overloaded():
    return FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", [
        pack(error_details_pb2.ErrorInfo(reason="OVERLOADED", domain="cognito-verify")),
        pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=100_000_000)))])


def test_send_is_retried_only_with_a_request_id():
    stub = FakeStub([overloaded()])
    client = client_with("GetUserAttributeVerificationCode", stub)
    with pytest.raises(CognitoVerifyError) as e:
        client.get_user_attribute_verification_code("tok.en.secret", "email")
    assert len(stub.calls) == 1 and "secret" not in repr(e.value) + str(e.value)
    stub = FakeStub([overloaded()])
    client = client_with("GetUserAttributeVerificationCode", stub)
    assert client.get_user_attribute_verification_code("t", "email", request_id="r1") == "ok"
    assert len(stub.calls) == 2


def test_verify_is_retried_only_before_cognito():
    stub = FakeStub([overloaded()])
    assert client_with("VerifyUserAttribute", stub).verify_user_attribute("t", "email", "123456") == "ok"
    too_many = FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow", [
        pack(error_details_pb2.ErrorInfo(reason="TOO_MANY_REQUESTS", domain="cognito-idp.amazonaws.com")),
        pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))])
    stub = FakeStub([too_many])
    with pytest.raises(CognitoVerifyError):
        client_with("VerifyUserAttribute", stub).verify_user_attribute("t", "email", "123456")
    assert len(stub.calls) == 1


def test_no_retry_past_the_deadline():
    long_wait = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "keys", [
        pack(error_details_pb2.ErrorInfo(reason="SIGNING_KEYS_UNAVAILABLE", domain="cognito-verify")),
        pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=60)))])
    stub = FakeStub([long_wait])
    with pytest.raises(CognitoVerifyError) as e:
        client_with("VerifyUserAttribute", stub).verify_user_attribute("t", "email", "1")
    assert len(stub.calls) == 1 and e.value.reason_name == "SIGNING_KEYS_UNAVAILABLE"


def with_retry_info(code, reason, seconds=0.1):
    return FakeRpcError(code, "later", [
        pack(error_details_pb2.ErrorInfo(reason=reason, domain="cognito-verify")),
        pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(seconds), nanos=int(seconds % 1 * 1e9))))])


def test_status_is_retried_on_any_retry_info():
    # Reasons a verify is not retried on (Cognito was, or may have been,
    # called): a status read consumes nothing, so it is retried on them.
    for code, reason in [(grpc.StatusCode.UNAVAILABLE, "COGNITO_UNREACHABLE"),
                         (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS"),
                         (grpc.StatusCode.RESOURCE_EXHAUSTED, "SMS_DAILY_LIMIT")]:
        stub = FakeStub([with_retry_info(code, reason)])
        with pytest.raises(CognitoVerifyError):
            client_with("VerifyUserAttribute", stub).verify_user_attribute("t", "email", "1")
        assert len(stub.calls) == 1, reason
        stub = FakeStub([with_retry_info(code, reason)])
        assert client_with("GetVerificationStatus", stub).get_verification_status("t") == "ok", reason
        assert len(stub.calls) == 2, reason


def test_status_is_not_retried_without_retry_info():
    for code, reason in [(grpc.StatusCode.UNAVAILABLE, "COGNITO_UNREACHABLE"),
                         (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED"),
                         (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")]:
        stub = FakeStub([FakeRpcError(code, "no", [
            pack(error_details_pb2.ErrorInfo(reason=reason, domain="cognito-verify"))])])
        with pytest.raises(CognitoVerifyError) as e:
            client_with("GetVerificationStatus", stub).get_verification_status("t")
        assert e.value.reason_name == reason and len(stub.calls) == 1


def test_status_retries_stay_within_attempts_and_deadline():
    stub = FakeStub([with_retry_info(grpc.StatusCode.UNAVAILABLE, "COGNITO_UNREACHABLE")] * 5)
    with pytest.raises(CognitoVerifyError):
        client_with("GetVerificationStatus", stub).get_verification_status("t")
    assert len(stub.calls) == 3
    stub = FakeStub([with_retry_info(grpc.StatusCode.UNAVAILABLE, "COGNITO_UNREACHABLE", seconds=60)])
    with pytest.raises(CognitoVerifyError):
        client_with("GetVerificationStatus", stub).get_verification_status("t", timeout=5)
    assert len(stub.calls) == 1 and stub.calls[0] <= 5
