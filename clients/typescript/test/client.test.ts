// The client against an in-process gRPC server (test/server.ts): what
// reaches the server, the retry rules, the deadline, and the secrets.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { inspect } from "node:util";

import { Code } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { Client, CognitoVerifyError, ErrorReason, connect } from "../src/index.js";
import { serviceError, startServer, type TestServer } from "./server.js";

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

// A fresh script of answers and a fresh record for each test.
function script(...answers: TestServer["answers"]): void {
  server.seen.length = 0;
  server.answers.splice(0, server.answers.length, ...answers);
}

function client(options: ConstructorParameters<typeof Client>[1] = {}): Client {
  return new Client(connect(server.addr, { plaintext: true }), options);
}

async function rejection(p: Promise<unknown>): Promise<CognitoVerifyError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CognitoVerifyError, `not a CognitoVerifyError: ${e}`);
    return e;
  }
  assert.fail("the call did not fail");
}

const overloaded = (retryMs?: number) => serviceError(Code.ResourceExhausted, "OVERLOADED", retryMs);

test("the requests reach the server in full", async () => {
  script();
  const c = client();
  const sent = await c.getUserAttributeVerificationCode("tok", "email", {
    requestId: "r-1",
    clientMetadata: { app: "web" },
  });
  assert.equal(sent.codeDeliveryDetails?.destination, "t***@e***");
  await c.verifyUserAttribute("tok", "email", "123456");
  assert.deepEqual(server.seen.map(({ at: _at, timeoutMs: _t, ...call }) => call), [
    { method: "send", accessToken: "tok", attributeName: "email", requestId: "r-1", clientMetadata: { app: "web" } },
    { method: "verify", accessToken: "tok", attributeName: "email", code: "123456" },
  ]);
  // Each call carries the client's deadline (10 s by default).
  for (const call of server.seen) {
    assert.ok(call.timeoutMs !== undefined && call.timeoutMs <= 10_000 && call.timeoutMs > 9_000, `${call.timeoutMs}`);
  }
});

test("a send without a requestId is never retried", async () => {
  script(overloaded(50));
  const err = await rejection(client().getUserAttributeVerificationCode("tok", "email"));
  assert.equal(err.reason, ErrorReason.OVERLOADED);
  assert.equal(server.seen.length, 1);
});

test("a send with a requestId is retried after the advised delay", async () => {
  script(overloaded(100));
  await client().getUserAttributeVerificationCode("tok", "email", { requestId: "r-2" });
  assert.equal(server.seen.length, 2);
  assert.deepEqual(server.seen.map((s) => s.requestId), ["r-2", "r-2"]);
  assert.ok(server.seen[1].at - server.seen[0].at >= 95, "the retry did not wait the RetryInfo delay");
});

test("a send is not retried without RetryInfo, even with a requestId", async () => {
  script(serviceError(Code.Unavailable, "COGNITO_UNREACHABLE"));
  const err = await rejection(client().getUserAttributeVerificationCode("tok", "email", { requestId: "r-3" }));
  assert.equal(err.reason, ErrorReason.COGNITO_UNREACHABLE);
  assert.equal(server.seen.length, 1);
});

test("a verify is retried on each RetryInfo reason decided before Cognito", async () => {
  const codes: Record<string, Code> = {
    SIGNING_KEYS_UNAVAILABLE: Code.Unavailable,
    LIMITS_UNAVAILABLE: Code.Unavailable,
    RATE_LIMITED: Code.ResourceExhausted,
    OVERLOADED: Code.ResourceExhausted,
    USER_VERIFY_QUOTA: Code.ResourceExhausted,
  };
  for (const [reason, code] of Object.entries(codes)) {
    script(serviceError(code, reason, 10));
    await client().verifyUserAttribute("tok", "email", "123456");
    assert.equal(server.seen.length, 2, reason);
  }
});

test("a verify is not retried on other RetryInfo statuses, nor without RetryInfo", async () => {
  // Cognito's own throttling: the code may have been consumed.
  for (const [reason, answer] of [
    ["TOO_MANY_REQUESTS", serviceError(Code.ResourceExhausted, "TOO_MANY_REQUESTS", 10)],
    ["REQUEST_IN_PROGRESS", serviceError(Code.Aborted, "REQUEST_IN_PROGRESS", 10)],
    ["OVERLOADED", overloaded()],
  ] as const) {
    script(answer);
    const err = await rejection(client().verifyUserAttribute("tok", "email", "123456"));
    assert.equal(err.reasonName, reason);
    assert.equal(server.seen.length, 1, reason);
  }
});

test("a status read is retried on any RetryInfo, even where a verify is not", async () => {
  // Reasons a verify is not retried on (Cognito was, or may have been,
  // called): a status read consumes nothing, so it is retried on them.
  for (const [reason, code] of [
    ["COGNITO_UNREACHABLE", Code.Unavailable],
    ["TOO_MANY_REQUESTS", Code.ResourceExhausted],
    ["SMS_DAILY_LIMIT", Code.ResourceExhausted],
  ] as const) {
    script(serviceError(code, reason, 10));
    await rejection(client().verifyUserAttribute("tok", "email", "123456"));
    assert.equal(server.seen.length, 1, `verify, ${reason}`);
    script(serviceError(code, reason, 10));
    const status = await client().getVerificationStatus("tok");
    assert.deepEqual(server.seen.map((s) => [s.method, s.accessToken]), [["status", "tok"], ["status", "tok"]], reason);
    assert.equal(status.attributes[0]?.attributeName, "email");
    assert.equal(status.attributes[0]?.verified, true);
    assert.equal(status.sendsLeft, 4);
  }
});

test("a status read is not retried without RetryInfo", async () => {
  for (const [reason, code] of [
    ["COGNITO_UNREACHABLE", Code.Unavailable],
    ["OVERLOADED", Code.ResourceExhausted],
    ["TOKEN_EXPIRED", Code.Unauthenticated],
  ] as const) {
    script(serviceError(code, reason));
    const err = await rejection(client().getVerificationStatus("tok"));
    assert.equal(err.reasonName, reason);
    assert.equal(server.seen.length, 1, reason);
  }
});

test("a status read keeps to maxAttempts and its deadline", async () => {
  const unreachable = () => serviceError(Code.Unavailable, "COGNITO_UNREACHABLE", 10);
  script(unreachable(), unreachable(), unreachable(), unreachable());
  await rejection(client().getVerificationStatus("tok"));
  assert.equal(server.seen.length, 3);
  script(serviceError(Code.Unavailable, "COGNITO_UNREACHABLE", 60_000));
  await rejection(client().getVerificationStatus("tok", { timeoutMs: 2000 }));
  assert.equal(server.seen.length, 1);
  assert.ok((server.seen[0].timeoutMs ?? Infinity) <= 2000);
});

test("at most maxAttempts attempts", async () => {
  script(overloaded(10), overloaded(10), overloaded(10), overloaded(10));
  const err = await rejection(client().getUserAttributeVerificationCode("tok", "email", { requestId: "r-4" }));
  assert.equal(err.reason, ErrorReason.OVERLOADED);
  assert.equal(server.seen.length, 3);
  script(overloaded(10), overloaded(10));
  await rejection(client({ maxAttempts: 1 }).verifyUserAttribute("tok", "email", "1"));
  assert.equal(server.seen.length, 1);
});

test("no retry when the advised wait passes the deadline", async () => {
  script(serviceError(Code.Unavailable, "SIGNING_KEYS_UNAVAILABLE", 60_000));
  const slept: number[] = [];
  const c = client({ sleep: async (ms) => void slept.push(ms) });
  const started = performance.now();
  const err = await rejection(c.verifyUserAttribute("tok", "email", "1"));
  assert.equal(err.reason, ErrorReason.SIGNING_KEYS_UNAVAILABLE);
  assert.equal(err.retryAfterMs, 60_000);
  assert.equal(server.seen.length, 1);
  assert.deepEqual(slept, []);
  assert.ok(performance.now() - started < 1000);
});

test("the deadline covers all attempts", async () => {
  const always = Array.from({ length: 10 }, () => overloaded(150));
  script(...always);
  const started = performance.now();
  const err = await rejection(client({ maxAttempts: 10 }).verifyUserAttribute("tok", "email", "1", { timeoutMs: 400 }));
  const elapsed = performance.now() - started;
  assert.equal(err.reason, ErrorReason.OVERLOADED);
  // Attempts at about 0, 150 and 300 ms; a fourth would start past 400.
  assert.equal(server.seen.length, 3);
  assert.ok(elapsed < 400, `took ${elapsed} ms`);
  // Each attempt is given what is left of the one deadline.
  const timeouts = server.seen.map((s) => s.timeoutMs ?? Infinity);
  assert.ok(timeouts[0] <= 400 && timeouts[0] > 300, `${timeouts}`);
  assert.ok(timeouts[1] <= 400 - 140 && timeouts[2] <= 400 - 290, `${timeouts}`);
});

test("a call that gets no answer ends at its deadline", async () => {
  script("hang");
  const started = performance.now();
  const err = await rejection(client({ timeoutMs: 300 }).verifyUserAttribute("tok", "email", "1"));
  const elapsed = performance.now() - started;
  assert.equal(err.code, Code.DeadlineExceeded);
  assert.ok(elapsed >= 250 && elapsed < 1000, `took ${elapsed} ms`);
  assert.ok((server.seen[0].timeoutMs ?? Infinity) <= 300);
});

test("the token and the code stay out of errors, the client and logged requests", async () => {
  const token = "eyJhbGciOiJSUzI1NiJ9.secret-token-payload.signature";
  const code = "987654";
  const logged: string[] = [];
  const transport = createGrpcTransport({
    baseUrl: `http://${server.addr}`,
    // An interceptor that logs each request, as a caller might.
    interceptors: [(next) => async (req) => {
      logged.push(inspect(req.message), JSON.stringify(req.message));
      return next(req);
    }],
  });
  const c = new Client(transport);
  script(
    serviceError(Code.InvalidArgument, "CODE_MISMATCH"),
    serviceError(Code.Unauthenticated, "TOKEN_EXPIRED"),
    serviceError(Code.Unauthenticated, "TOKEN_EXPIRED"),
  );
  const errors = [
    await rejection(c.verifyUserAttribute(token, "email", code)),
    await rejection(c.getUserAttributeVerificationCode(token, "email")),
    await rejection(c.getVerificationStatus(token)),
  ];
  // The secrets did go on the wire.
  assert.equal(server.seen[0].accessToken, token);
  assert.equal(server.seen[0].code, code);
  const shown = [
    ...errors.flatMap((e) => [e.message, String(e), inspect(e), e.stack ?? "", JSON.stringify(e)]),
    inspect(c),
    String(c),
    ...logged,
  ];
  for (const text of shown) {
    assert.ok(!text.includes("secret-token") && !text.includes(code), `a secret in: ${text}`);
  }
  // The logged requests still say what they are.
  assert.equal(logged.length, 6);
  assert.match(logged[0], /attributeName: 'email'/);
  assert.match(logged[0], /<redacted>/);
});

test("the token and the code must be strings", async () => {
  const c = client();
  await assert.rejects(async () => c.getVerificationStatus(12345 as unknown as string), TypeError);
  await assert.rejects(async () => c.verifyUserAttribute(12345 as unknown as string, "email", "1"), TypeError);
  await assert.rejects(async () => c.verifyUserAttribute("tok", "email", 987654 as unknown as string), TypeError);
});
