// The error decoding, from statuses encoded as the service sends them: a
// google.rpc.Status (code, message, details as google.protobuf.Any) in the
// grpc-status-details-bin trailer, base64 without padding, which Connect's
// gRPC transport reads into a ConnectError.
import assert from "node:assert/strict";
import { test } from "node:test";

import { create, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { AnySchema, DurationSchema, anyPack, type Any } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";

import { CognitoVerifyError, ErrorReason } from "../src/index.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "../src/gen/google/rpc/error_details_pb.js";

function pack<Desc extends DescMessage>(desc: Desc, init: MessageInitShape<Desc>): Any {
  return anyPack(desc, create(desc, init) as MessageShape<Desc>);
}

// google.rpc.Status, written field by field (no generated Status needed):
// code = 1, message = 2, repeated details = 3.
function trailer(code: Code, message: string, details: Any[] = []): Headers {
  const w = new BinaryWriter();
  w.tag(1, WireType.Varint).int32(code);
  w.tag(2, WireType.LengthDelimited).string(message);
  for (const d of details) w.tag(3, WireType.LengthDelimited).bytes(toBinary(AnySchema, d));
  return new Headers({
    "grpc-status": String(code),
    "grpc-message": encodeURIComponent(message),
    "grpc-status-details-bin": Buffer.from(w.finish()).toString("base64").replace(/=+$/, ""),
  });
}

function decode(headers: Headers): CognitoVerifyError {
  const e = findTrailerError(headers);
  assert.ok(e instanceof ConnectError);
  return CognitoVerifyError.fromConnectError(e);
}

function cooldownDetails(): Any[] {
  return [
    pack(ErrorInfoSchema, { reason: "SEND_COOLDOWN", domain: "cognito-verify", metadata: { attribute: "email" } }),
    pack(RetryInfoSchema, { retryDelay: create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }) }),
    pack(QuotaFailureSchema, { violations: [{ subject: "user:attribute", description: "wait" }] }),
  ];
}

test("decodes the reason, the retry delay and the quota", () => {
  const err = decode(trailer(Code.ResourceExhausted, "slow down", cooldownDetails()));
  assert.ok(err instanceof Error);
  assert.equal(err.name, "CognitoVerifyError");
  assert.equal(err.code, Code.ResourceExhausted);
  assert.equal(err.codeName, "RESOURCE_EXHAUSTED");
  assert.equal(err.rawMessage, "slow down");
  assert.equal(err.reason, ErrorReason.SEND_COOLDOWN);
  assert.equal(err.reasonName, "SEND_COOLDOWN");
  assert.equal(err.domain, "cognito-verify");
  assert.deepEqual({ ...err.metadata }, { attribute: "email" });
  assert.equal(err.retryAfterMs, 1500);
  assert.deepEqual(err.quotaViolations, [{ subject: "user:attribute", description: "wait" }]);
  assert.deepEqual(err.fieldViolations, []);
  assert.equal(err.message, "RESOURCE_EXHAUSTED: slow down [SEND_COOLDOWN] (retry after 1.500 s)");
  assert.match(String(err), /^CognitoVerifyError: RESOURCE_EXHAUSTED: slow down/);
});

test("decodes field violations; no RetryInfo, no retry delay", () => {
  const err = decode(trailer(Code.InvalidArgument, "wrong code", [
    pack(ErrorInfoSchema, { reason: "CODE_MISMATCH", domain: "cognito-idp.amazonaws.com" }),
    pack(BadRequestSchema, { fieldViolations: [{ field: "code", description: "does not match" }] }),
  ]));
  assert.equal(err.reason, ErrorReason.CODE_MISMATCH);
  assert.equal(err.domain, "cognito-idp.amazonaws.com");
  assert.deepEqual(err.fieldViolations, [{ field: "code", description: "does not match" }]);
  assert.equal(err.retryAfterMs, undefined);
  assert.equal(err.message, "INVALID_ARGUMENT: wrong code [CODE_MISMATCH]");
});

test("a reason this version does not know keeps its string", () => {
  const err = decode(trailer(Code.Unknown, "?", [
    pack(ErrorInfoSchema, {
      reason: "BRAND_NEW",
      domain: "cognito-idp.amazonaws.com",
      metadata: { awsErrorCode: "BrandNewException" },
    }),
  ]));
  assert.equal(err.reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
  assert.equal(err.reasonName, "BRAND_NEW");
  assert.equal(err.metadata.awsErrorCode, "BrandNewException");
});

test("a RetryInfo without a delay still says a retry is safe", () => {
  const err = decode(trailer(Code.Unavailable, "keys", [
    pack(ErrorInfoSchema, { reason: "SIGNING_KEYS_UNAVAILABLE", domain: "cognito-verify" }),
    pack(RetryInfoSchema, {}),
  ]));
  assert.equal(err.retryAfterMs, 0);
  assert.equal(err.reason, ErrorReason.SIGNING_KEYS_UNAVAILABLE);
});

test("a status without details: only the code and the message", () => {
  const err = decode(new Headers({ "grpc-status": String(Code.Unavailable), "grpc-message": "connection%20refused" }));
  assert.equal(err.code, Code.Unavailable);
  assert.equal(err.rawMessage, "connection refused");
  assert.equal(err.reasonName, "");
  assert.equal(err.reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
  assert.equal(err.retryAfterMs, undefined);
  assert.deepEqual({ ...err.metadata }, {});
  assert.equal(err.message, "UNAVAILABLE: connection refused");
});

test("from() takes any thrown value; gRPC's code names", () => {
  const err = CognitoVerifyError.from(new Error("boom"));
  assert.equal(err.code, Code.Unknown);
  assert.equal(err.rawMessage, "boom");
  assert.equal(CognitoVerifyError.from(err), err);
  assert.equal(new CognitoVerifyError(Code.Canceled, "").codeName, "CANCELLED");
  assert.equal(new CognitoVerifyError(Code.DeadlineExceeded, "").codeName, "DEADLINE_EXCEEDED");
  assert.equal(new CognitoVerifyError(Code.Unauthenticated, "").codeName, "UNAUTHENTICATED");
});
