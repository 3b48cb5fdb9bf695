// The transport, the error type and the client (see index.ts).
import { readFileSync } from "node:fs";
import type { SecureClientSessionOptions } from "node:http2";
import { inspect } from "node:util";

import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  type CallOptions,
  type Client as ConnectClient,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { ErrorReason, ErrorReasonSchema } from "./gen/cognito/verify/v1/error_reason_pb.js";
import {
  GetUserAttributeVerificationCodeRequestSchema,
  GetVerificationStatusRequestSchema,
  UserAttributeVerificationService,
  VerifyUserAttributeRequestSchema,
  type GetUserAttributeVerificationCodeResponse,
  type GetVerificationStatusResponse,
  type VerifyUserAttributeResponse,
} from "./gen/cognito/verify/v1/verification_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

/** The default deadline of one call (retries included), in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** The default number of attempts of one call, where a retry is safe. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/** How to reach the service: TLS by default (see {@link connect}). */
export interface ConnectOptions {
  /** No TLS, for a local `cognito-verify dev`. */
  plaintext?: boolean;
  /** The CA (PEM) to trust instead of Node's default roots. */
  caFile?: string;
  /** The client certificate (PEM), for mTLS; needs `keyFile`. */
  certFile?: string;
  /** The client certificate's key (PEM), for mTLS; needs `certFile`. */
  keyFile?: string;
  /** The name the server's certificate must carry, when not the address's host. */
  serverName?: string;
}

/**
 * The URL of `addr` for a transport: a bare `host:port` (as `cognito-verify
 * dev` prints it) gets `http://` when plaintext, `https://` otherwise; a URL
 * must have that scheme.
 */
export function baseUrl(addr: string, plaintext: boolean): string {
  const scheme = plaintext ? "http" : "https";
  const sep = addr.indexOf("://");
  if (sep < 0) {
    return `${scheme}://${addr}`;
  }
  if (addr.slice(0, sep).toLowerCase() !== scheme) {
    throw new TypeError(
      `${addr}: a ${plaintext ? "plaintext" : "TLS"} address is ${scheme}:// (or a bare host:port)`,
    );
  }
  return addr;
}

/**
 * A gRPC transport (HTTP/2) to the service at `addr` (`host:port`).
 *
 * TLS by default, trusting `caFile` (PEM) or Node's default roots; with
 * `certFile` and `keyFile` (PEM) also mTLS, the client certificate naming
 * the caller. `plaintext: true` for a local `cognito-verify dev`.
 * `serverName` overrides the name the server's certificate must have.
 */
export function connect(addr: string, options: ConnectOptions = {}): Transport {
  const { plaintext = false, caFile, certFile, keyFile, serverName } = options;
  if (plaintext) {
    if (caFile || certFile || keyFile || serverName) {
      throw new TypeError("plaintext takes no certificates");
    }
    return createGrpcTransport({ baseUrl: baseUrl(addr, true) });
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new TypeError("mTLS needs both certFile and keyFile");
  }
  const tls: SecureClientSessionOptions = {};
  if (caFile !== undefined) tls.ca = readFileSync(caFile);
  if (certFile !== undefined && keyFile !== undefined) {
    tls.cert = readFileSync(certFile);
    tls.key = readFileSync(keyFile);
  }
  if (serverName !== undefined) tls.servername = serverName;
  return createGrpcTransport({ baseUrl: baseUrl(addr, false), nodeOptions: tls });
}

/** A request field the service refused (google.rpc.BadRequest). */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** A limit that was spent (google.rpc.QuotaFailure). */
export interface QuotaViolation {
  readonly subject: string;
  readonly description: string;
}

/** What a {@link CognitoVerifyError} carries besides its code and message. */
export interface ErrorDetails {
  reasonName?: string;
  domain?: string;
  metadata?: Record<string, string>;
  retryAfterMs?: number;
  fieldViolations?: readonly FieldViolation[];
  quotaViolations?: readonly QuotaViolation[];
}

/** gRPC's name of a code: `RESOURCE_EXHAUSTED` for Code.ResourceExhausted. */
function grpcCodeName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED";
  const name = Code[code] as string | undefined;
  return name ? name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() : `CODE_${code}`;
}

/**
 * Any failed call: the gRPC status and its decoded details.
 *
 * `reason` is the `ErrorReason` value of `ErrorInfo.reason`, or
 * `ERROR_REASON_UNSPECIFIED` when the service sent a reason this version
 * does not know (an unrecognised Cognito error: see error_reason.proto) or
 * none at all (a transport error); `reasonName` keeps the string as sent.
 * `retryAfterMs` is set only when the status carries a RetryInfo, i.e. when
 * the service says a retry is safe. `message` is the code, the status
 * message (`rawMessage`), the reason and the retry delay.
 */
export class CognitoVerifyError extends Error {
  static {
    // On the prototype, so that the stack (made by Error's constructor)
    // names the class too.
    this.prototype.name = "CognitoVerifyError";
  }

  readonly code: Code;
  readonly rawMessage: string;
  readonly reason: ErrorReason;
  readonly reasonName: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly retryAfterMs: number | undefined;
  readonly fieldViolations: readonly FieldViolation[];
  readonly quotaViolations: readonly QuotaViolation[];

  constructor(code: Code, rawMessage: string, details: ErrorDetails = {}) {
    const reasonName = details.reasonName ?? "";
    const retryAfterMs = details.retryAfterMs;
    let message = `${grpcCodeName(code)}: ${rawMessage}`;
    if (reasonName) message += ` [${reasonName}]`;
    if (retryAfterMs !== undefined) message += ` (retry after ${(retryAfterMs / 1000).toFixed(3)} s)`;
    super(message);
    this.code = code;
    this.rawMessage = rawMessage;
    this.reasonName = reasonName;
    this.reason = ErrorReasonSchema.values.find((v) => v.name === reasonName)?.number
      ?? ErrorReason.ERROR_REASON_UNSPECIFIED;
    this.domain = details.domain ?? "";
    this.metadata = Object.freeze({ ...details.metadata });
    this.retryAfterMs = retryAfterMs;
    this.fieldViolations = Object.freeze([...(details.fieldViolations ?? [])]);
    this.quotaViolations = Object.freeze([...(details.quotaViolations ?? [])]);
  }

  /** gRPC's name of the code, e.g. `RESOURCE_EXHAUSTED`. */
  get codeName(): string {
    return grpcCodeName(this.code);
  }

  /** Decodes the details a failed call's status carried (`grpc-status-details-bin`). */
  static fromConnectError(e: ConnectError): CognitoVerifyError {
    let reasonName: string | undefined;
    let domain: string | undefined;
    const metadata: Record<string, string> = {};
    for (const info of e.findDetails(ErrorInfoSchema)) {
      reasonName = info.reason;
      domain = info.domain;
      Object.assign(metadata, info.metadata);
    }
    let retryAfterMs: number | undefined;
    for (const retry of e.findDetails(RetryInfoSchema)) {
      const delay = retry.retryDelay;
      retryAfterMs = delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : 0;
    }
    return new CognitoVerifyError(e.code, e.rawMessage, {
      reasonName,
      domain,
      metadata,
      retryAfterMs,
      fieldViolations: e.findDetails(BadRequestSchema).flatMap((b) =>
        b.fieldViolations.map((v) => ({ field: v.field, description: v.description }))),
      quotaViolations: e.findDetails(QuotaFailureSchema).flatMap((q) =>
        q.violations.map((v) => ({ subject: v.subject, description: v.description }))),
    });
  }

  /** Any thrown value as a CognitoVerifyError (a ConnectError decoded). */
  static from(e: unknown): CognitoVerifyError {
    return e instanceof CognitoVerifyError ? e : CognitoVerifyError.fromConnectError(ConnectError.from(e));
  }
}

// Verify is retried only on the statuses the service sends before it calls
// Cognito and that carry a RetryInfo (docs/errors.md): nothing was done.
const VERIFY_RETRYABLE: ReadonlySet<ErrorReason> = new Set([
  ErrorReason.SIGNING_KEYS_UNAVAILABLE,
  ErrorReason.LIMITS_UNAVAILABLE,
  ErrorReason.RATE_LIMITED,
  ErrorReason.OVERLOADED,
  ErrorReason.USER_VERIFY_QUOTA,
]);

// A request message as it goes to the transport, whose inspect and JSON
// (what an interceptor that logs it would print) hide the secret fields.
function redacted<T extends object>(message: T, secrets: readonly string[]): T {
  const shown = () => Object.fromEntries(
    Object.entries(message).map(([k, v]) => [k, secrets.includes(k) ? "<redacted>" : v]));
  Object.defineProperty(message, inspect.custom, {
    value: (_depth: number, options: object) => inspect(shown(), options),
  });
  Object.defineProperty(message, "toJSON", { value: shown });
  return message;
}

function secretArg(name: string, value: unknown): string {
  // The serializer would send any other value as some string; the error
  // names the argument, never the value.
  if (typeof value !== "string") throw new TypeError(`${name} must be a string`);
  return value;
}

/** The client's defaults. */
export interface ClientOptions {
  /** The deadline of each call, retries included (default {@link DEFAULT_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Attempts of a call where a retry is safe (default {@link DEFAULT_MAX_ATTEMPTS}). */
  maxAttempts?: number;
  /** How to wait before a retry (tests replace it). */
  sleep?: (ms: number) => Promise<void>;
}

/** Options of {@link Client.getUserAttributeVerificationCode}. */
export interface SendOptions {
  /** A UUID per user intent: a repeat returns the first answer without sending again. */
  requestId?: string;
  /** Key-value pairs for the user pool's custom message Lambda trigger. */
  clientMetadata?: Record<string, string>;
  /** This call's deadline, retries included, instead of the client's. */
  timeoutMs?: number;
}

/** Options of {@link Client.verifyUserAttribute}. */
export interface VerifyOptions {
  /** This call's deadline, retries included, instead of the client's. */
  timeoutMs?: number;
}

/** Options of {@link Client.getVerificationStatus}. */
export interface StatusOptions {
  /** This call's deadline, retries included, instead of the client's. */
  timeoutMs?: number;
}

/**
 * The three RPCs, with a default deadline and only the retries that are safe.
 *
 * Each call takes `timeoutMs` (default {@link DEFAULT_TIMEOUT_MS}): the
 * deadline of the call and all its retries. A retry waits the delay the
 * status's RetryInfo advises, and is not made when that wait would pass the
 * deadline. A send is retried only with a `requestId` (the service then
 * returns the first answer instead of sending again); a verify only on a
 * RetryInfo status the service sends before it calls Cognito; a status read
 * (which consumes nothing) on any status with a RetryInfo. Every failure
 * is thrown as {@link CognitoVerifyError}. Tokens and codes are never
 * logged nor part of an error.
 */
export class Client {
  readonly #stub: ConnectClient<typeof UserAttributeVerificationService>;
  readonly #timeoutMs: number;
  readonly #maxAttempts: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(transport: Transport, options: ClientOptions = {}) {
    this.#stub = createClient(UserAttributeVerificationService, transport);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** The generated Connect client, for what this layer does not cover. */
  get stub(): ConnectClient<typeof UserAttributeVerificationService> {
    return this.#stub;
  }

  /** Sends a code for `attributeName` (`email` or `phone_number`). */
  async getUserAttributeVerificationCode(
    accessToken: string,
    attributeName: string,
    options: SendOptions = {},
  ): Promise<GetUserAttributeVerificationCodeResponse> {
    const { requestId = "", clientMetadata = {}, timeoutMs } = options;
    const req = redacted(create(GetUserAttributeVerificationCodeRequestSchema, {
      accessToken: secretArg("accessToken", accessToken),
      attributeName,
      clientMetadata: { ...clientMetadata },
      requestId,
    }), ["accessToken"]);
    return this.#call(
      (opts) => this.#stub.getUserAttributeVerificationCode(req, opts),
      timeoutMs,
      (e) => requestId !== "" && e.retryAfterMs !== undefined,
    );
  }

  /** Submits the `code` the user received for `attributeName`. */
  async verifyUserAttribute(
    accessToken: string,
    attributeName: string,
    code: string,
    options: VerifyOptions = {},
  ): Promise<VerifyUserAttributeResponse> {
    const req = redacted(create(VerifyUserAttributeRequestSchema, {
      accessToken: secretArg("accessToken", accessToken),
      attributeName,
      code: secretArg("code", code),
    }), ["accessToken", "code"]);
    return this.#call(
      (opts) => this.#stub.verifyUserAttribute(req, opts),
      options.timeoutMs,
      (e) => e.retryAfterMs !== undefined && VERIFY_RETRYABLE.has(e.reason),
    );
  }

  /**
   * Where the token's user stands, for `email` and `phone_number`: whether
   * the user has each (masked), whether it is verified, when the next code
   * could be sent and what would refuse it (`nextSendIn`, `sendBlockedBy`);
   * the codes and attempts left this hour. It reads only (no limit is
   * consumed), so any status with a RetryInfo is retried.
   */
  async getVerificationStatus(
    accessToken: string,
    options: StatusOptions = {},
  ): Promise<GetVerificationStatusResponse> {
    const req = redacted(create(GetVerificationStatusRequestSchema, {
      accessToken: secretArg("accessToken", accessToken),
    }), ["accessToken"]);
    return this.#call(
      (opts) => this.#stub.getVerificationStatus(req, opts),
      options.timeoutMs,
      (e) => e.retryAfterMs !== undefined,
    );
  }

  async #call<T>(
    attempt: (options: CallOptions) => Promise<T>,
    timeoutMs: number | undefined,
    retryable: (e: CognitoVerifyError) => boolean,
  ): Promise<T> {
    const deadline = performance.now() + (timeoutMs ?? this.#timeoutMs);
    for (let n = 1; ; n++) {
      // Whole milliseconds: grpc-timeout takes no fraction, and Connect
      // reads a timeout <= 0 as none at all.
      const left = Math.floor(deadline - performance.now());
      if (left <= 0) {
        throw new CognitoVerifyError(Code.DeadlineExceeded, "the call's deadline passed");
      }
      let err: CognitoVerifyError;
      try {
        return await attempt({ timeoutMs: left });
      } catch (e) {
        err = CognitoVerifyError.from(e);
      }
      const wait = err.retryAfterMs ?? 0;
      if (n >= this.#maxAttempts || !retryable(err) || performance.now() + wait >= deadline) {
        throw err;
      }
      await this.#sleep(wait);
    }
  }
}
