// connect(): the address's scheme, the option checks, and TLS / mTLS from
// PEM files (made with openssl, as scripts/smoke-tls makes its own) against
// an in-process server that requires a client certificate.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { baseUrl } from "../src/client.js";
import { Client, CognitoVerifyError, connect, type ConnectOptions } from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

test("a bare host:port takes the transport's scheme; a URL must have it", () => {
  assert.equal(baseUrl("127.0.0.1:50051", true), "http://127.0.0.1:50051");
  assert.equal(baseUrl("127.0.0.1:50051", false), "https://127.0.0.1:50051");
  assert.equal(baseUrl("[::1]:50051", true), "http://[::1]:50051");
  assert.equal(baseUrl("verify.example.com:443", false), "https://verify.example.com:443");
  assert.equal(baseUrl("http://127.0.0.1:50051", true), "http://127.0.0.1:50051");
  assert.equal(baseUrl("HTTPS://verify.example.com", false), "HTTPS://verify.example.com");
  assert.throws(() => baseUrl("https://127.0.0.1:50051", true), TypeError);
  assert.throws(() => baseUrl("http://verify.example.com:443", false), TypeError);
});

test("connect refuses options that contradict each other", () => {
  assert.throws(() => connect("127.0.0.1:1", { plaintext: true, caFile: "ca.pem" }), /plaintext/);
  assert.throws(() => connect("127.0.0.1:1", { plaintext: true, serverName: "x" }), /plaintext/);
  assert.throws(() => connect("127.0.0.1:1", { certFile: "client.pem" }), /both/);
  assert.throws(() => connect("127.0.0.1:1", { keyFile: "client-key.pem" }), /both/);
});

test("a bare address with plaintext speaks h2c; without, TLS", { timeout: 10_000 }, async () => {
  const server = await startServer();
  try {
    await new Client(connect(server.addr, { plaintext: true })).verifyUserAttribute("t", "email", "1");
    assert.equal(server.seen.length, 1);
    const err = await new Client(connect(server.addr), { timeoutMs: 2000 })
      .verifyUserAttribute("t", "email", "1")
      .then(() => assert.fail("TLS to a plaintext server succeeded"), (e: unknown) => e);
    assert.ok(err instanceof CognitoVerifyError);
    assert.equal(server.seen.length, 1);
  } finally {
    await server.close();
  }
});

// A CA, a server certificate for `localhost` only (not 127.0.0.1, so that
// the server name must be given), a client certificate, and a stranger CA.
let pki: string;
let server: TestServer;
const pem = (name: string) => join(pki, `${name}.pem`);
const key = (name: string) => join(pki, `${name}.key`);

before(async () => {
  pki = mkdtempSync(join(tmpdir(), "cognito-verify-client-test-"));
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: pki, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (const ca of ["ca", "stranger-ca"]) {
    openssl("req", "-x509", ...ec, "-keyout", `${ca}.key`, "-out", `${ca}.pem`, "-days", "1", "-subj", `/CN=${ca}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  }
  const leaf = (name: string, subject: string, ext: string) => {
    openssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    writeFileSync(join(pki, `${name}.ext`), ext);
    openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-days", "1", "-out", `${name}.pem`, "-extfile", `${name}.ext`);
  };
  leaf("server", "/CN=localhost", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
  leaf("client", "/CN=ts-client", "extendedKeyUsage=clientAuth\n");
  server = await startServer([], {
    cert: readFileSync(pem("server")),
    key: readFileSync(key("server")),
    ca: readFileSync(pem("ca")),
    requestCert: true,
    rejectUnauthorized: true,
  });
});
after(async () => {
  await server?.close();
  if (pki) rmSync(pki, { recursive: true, force: true });
});

async function call(options: ConnectOptions): Promise<unknown> {
  const client = new Client(connect(server.addr, options), { timeoutMs: 3000 });
  return client.verifyUserAttribute("t", "email", "1").then(() => "ok", (e: unknown) => e);
}

test("mTLS from PEM files, with the server name given", { timeout: 10_000 }, async () => {
  server.peers.length = 0;
  const mtls = { caFile: pem("ca"), certFile: pem("client"), keyFile: key("client"), serverName: "localhost" };
  assert.equal(await call(mtls), "ok");
  assert.deepEqual(server.peers, ["ts-client"]);
});

test("TLS fails without the right CA, the server name or the client certificate", { timeout: 10_000 }, async () => {
  const client = { certFile: pem("client"), keyFile: key("client") };
  // What each one lacks, and how the handshake says so.
  const failures: [string, ConnectOptions, RegExp][] = [
    ["a stranger CA", { ...client, caFile: pem("stranger-ca"), serverName: "localhost" }, /self-signed certificate/],
    ["no CA (Node's roots)", { ...client, serverName: "localhost" }, /self-signed certificate/],
    ["no server name (the certificate is not for 127.0.0.1)", { ...client, caFile: pem("ca") }, /altnames/],
    ["no client certificate", { caFile: pem("ca"), serverName: "localhost" }, /certificate required/],
  ];
  server.seen.length = 0;
  for (const [what, options, why] of failures) {
    const err = await call(options);
    assert.ok(err instanceof CognitoVerifyError, `succeeded with ${what}`);
    assert.match(err.message, why, what);
  }
  assert.equal(server.seen.length, 0);
});
