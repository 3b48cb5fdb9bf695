// TypeScript / Node client for cognito-verify (gRPC service cognito.verify.v1).
//
// A thin layer over the generated code (protoc-gen-es, src/gen/) and Connect:
// `connect` makes the gRPC transport (HTTP/2, plaintext, TLS or mTLS),
// `Client` calls the three RPCs (a code sent, a code checked, where the user
// stands) with a default deadline and the retries that are safe, and every
// failure of a call is thrown as one `CognitoVerifyError`, decoded from the
// rich status.
export {
  Client,
  CognitoVerifyError,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_TIMEOUT_MS,
  connect,
  type ClientOptions,
  type ConnectOptions,
  type ErrorDetails,
  type FieldViolation,
  type QuotaViolation,
  type SendOptions,
  type StatusOptions,
  type VerifyOptions,
} from "./client.js";
export { Code, type Transport } from "@connectrpc/connect";
export * from "./gen/cognito/verify/v1/error_reason_pb.js";
export * from "./gen/cognito/verify/v1/verification_pb.js";
