//! Telemetry of the real binary, over real sockets: the spans it exports to
//! an OTLP collector (a tonic TraceService in this test), the counters of a
//! `/metrics` scrape after a known sequence of calls, and the audit events
//! of that sequence, field by field. Nothing secret in any of them.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Client;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    },
    common::v1::any_value::Value,
    trace::v1::{span::SpanKind, status::StatusCode, Span},
};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;
use tonic::{transport::Channel, Code, Request};

use crate::common::{
    binary::{command, Running},
    send_request,
    stack::http,
    verify_request, Reply, ScriptedCognito,
};

const POOL: &str = "eu-west-1_Telemetry";
const SUB: &str = "5f1c0d2e-0000-4000-8000-00000000c0de";
const SECRET_CODE: &str = "735291";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// An access token shaped like Cognito's (the scripted endpoint checks
/// nothing): its payload names the pool and the user.
fn token() -> String {
    let payload = json!({
        "sub": SUB,
        "iss": format!("https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"),
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "exp": 4_102_444_800_u64,
        "client_id": "telemetryclient000000001",
    });
    let header = json!({"alg": "RS256", "kid": "telemetry-key"});
    format!(
        "{}.{}.U0VDUkVULXNpZ25hdHVyZQ",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// Collects what the binary exports.
struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn start_collector() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let incoming =
        tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(incoming),
    );
    (addr, rx)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(span: &Span) -> BTreeMap<String, Value> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.as_ref()?.value.clone()?)))
        .collect()
}

fn string(v: &str) -> Value {
    Value::StringValue(v.to_owned())
}

fn with_traceparent<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_as_children_of_the_callers_span() {
    let (collector, mut exported) = start_collector().await;
    let cognito = ScriptedCognito::start().await;
    let mut cmd = command(&["--region", "eu-west-1", "--cognito-endpoint", &cognito.url]);
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_SERVICE_NAME", "verify-under-test")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test");
    let running = Running::start(cmd).await;
    let mut client = Client::new(running.channel().await);
    let token = token();

    cognito.push(Reply::ok(json!({"CodeDeliveryDetails": {
        "Destination": "d***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}})));
    client
        .get_user_attribute_verification_code(with_traceparent(send_request(&token, "email")))
        .await
        .unwrap();
    cognito.push(Reply::error(
        "CodeMismatchException",
        "Invalid verification code provided, please try again.",
    ));
    let wrong = client
        .verify_user_attribute(with_traceparent(verify_request(
            &token,
            "email",
            SECRET_CODE,
        )))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    cognito.push(Reply::raw(
        502,
        &[("content-type", "text/html")],
        "<html>down</html>",
    ));
    let fault = client
        .verify_user_attribute(with_traceparent(verify_request(
            &token,
            "email",
            SECRET_CODE,
        )))
        .await
        .unwrap_err();
    assert_eq!(fault.code(), Code::Unavailable);

    // SIGTERM flushes what the batch processor still holds.
    let (code, log) = running.terminate().await;
    assert_eq!(code, 0, "{log}");
    let mut requests = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(2), exported.recv()).await {
        requests.push(r);
    }
    let resource: Vec<_> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter_map(|rs| rs.resource.as_ref())
        .flat_map(|r| &r.attributes)
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().and_then(|v| v.value.clone()),
            )
        })
        .collect();
    assert!(resource.contains(&("service.name".into(), Some(string("verify-under-test")))));
    assert!(resource.contains(&("deployment.environment".into(), Some(string("test")))));
    let spans: Vec<&Span> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let servers: Vec<&Span> = spans
        .iter()
        .copied()
        .filter(|s| s.kind() == SpanKind::Server)
        .collect();
    let clients: Vec<&Span> = spans
        .iter()
        .copied()
        .filter(|s| s.kind() == SpanKind::Client)
        .collect();
    assert_eq!((servers.len(), clients.len()), (3, 3), "{spans:#?}");

    for client in &clients {
        assert_eq!(hex(&client.trace_id), TRACE_ID);
        let parent = servers
            .iter()
            .find(|s| s.span_id == client.parent_span_id)
            .expect("each client span is a child of a server span");
        let (sa, ca) = (attributes(parent), attributes(client));
        assert_eq!(sa["rpc.system"], string("grpc"));
        assert_eq!(
            sa["rpc.service"],
            string("cognito.verify.v1.UserAttributeVerificationService")
        );
        assert_eq!(sa["client.address"], string("127.0.0.1"));
        assert_eq!(sa["server.address"], string("127.0.0.1"));
        assert!(matches!(sa["server.port"], Value::IntValue(p) if p > 0));
        assert_eq!(ca["rpc.system"], string("aws-api"));
        assert_eq!(ca["rpc.service"], string("CognitoIdentityProvider"));
        assert_eq!(ca["rpc.method"], sa["rpc.method"]);
        assert_eq!(ca["cloud.region"], string("eu-west-1"));
        assert!(
            client.name.starts_with("CognitoIdentityProvider/"),
            "{}",
            client.name
        );
    }
    let by_method = |method: &str, status: i64| {
        servers
            .iter()
            .copied()
            .find(|s| {
                let a = attributes(s);
                a["rpc.method"] == string(method)
                    && a["rpc.grpc.status_code"] == Value::IntValue(status)
            })
            .unwrap_or_else(|| panic!("no {method} span with status {status}: {servers:#?}"))
    };
    let ok = by_method("GetUserAttributeVerificationCode", 0);
    assert_eq!(
        ok.name,
        "cognito.verify.v1.UserAttributeVerificationService/GetUserAttributeVerificationCode"
    );
    assert_ne!(
        ok.status.as_ref().map(|s| s.code()),
        Some(StatusCode::Error)
    );
    let mismatch = by_method("VerifyUserAttribute", Code::InvalidArgument as i64);
    assert_ne!(
        mismatch.status.as_ref().map(|s| s.code()),
        Some(StatusCode::Error),
        "a wrong code is not a server fault"
    );
    let outage = by_method("VerifyUserAttribute", Code::Unavailable as i64);
    assert_eq!(
        outage.status.as_ref().map(|s| s.code()),
        Some(StatusCode::Error)
    );

    let client_of = |server: &Span| {
        clients
            .iter()
            .copied()
            .find(|c| c.parent_span_id == server.span_id)
            .unwrap()
    };
    let ok_client = attributes(client_of(ok));
    assert_eq!(ok_client["aws.request_id"], string("req-ok-1"));
    assert_eq!(ok_client["http.response.status_code"], Value::IntValue(200));
    let mismatch_client = attributes(client_of(mismatch));
    assert_eq!(
        mismatch_client["error.type"],
        string("CodeMismatchException")
    );
    assert_eq!(
        mismatch_client["http.response.status_code"],
        Value::IntValue(400)
    );
    assert_eq!(
        attributes(client_of(outage))["error.type"],
        string("unparseable_response")
    );

    // Nothing secret anywhere in what was exported.
    let exported = format!("{requests:?}");
    for secret in [token.as_str(), "U0VDUkVULXNpZ25hdHVyZQ", SECRET_CODE] {
        assert!(!exported.contains(secret), "{secret} was exported");
    }
    // The log line of each RPC names the trace and the span.
    for server in &servers {
        assert_eq!(hex(&server.trace_id), TRACE_ID);
        assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    }
    let server_ids: Vec<String> = servers.iter().map(|s| hex(&s.span_id)).collect();
    let finished: Vec<Json> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Json| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("rpc "))
        })
        .collect();
    assert_eq!(finished.len(), 3, "{log}");
    for line in finished {
        assert_eq!(line["span"]["trace_id"], TRACE_ID);
        let span_id = line["span"]["span_id"].as_str().unwrap().to_owned();
        assert!(server_ids.contains(&span_id), "{span_id} not exported");
    }
}

/// The admin listener's address, from the log.
async fn admin_addr(running: &Running) -> String {
    for _ in 0..100 {
        let found = running.log.lock().unwrap().iter().find_map(|l| {
            let v: Json = serde_json::from_str(l).ok()?;
            (v["fields"]["message"]
                .as_str()?
                .starts_with("admin listening"))
            .then(|| v["fields"]["address"].as_str().unwrap().to_owned())
        });
        if let Some(addr) = found {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no admin listener in the log");
}

/// The scrape's samples: series (name and labels, as written) → value.
async fn scrape(admin: &str) -> BTreeMap<String, f64> {
    let (status, headers, body) = http(
        &format!("http://{admin}"),
        "GET",
        "/metrics",
        &[],
        String::new(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

fn handled(method: &str, code: &str) -> String {
    format!("grpc_server_handled_total{{grpc_type=\"unary\",grpc_service=\"cognito.verify.v1.UserAttributeVerificationService\",grpc_method=\"{method}\",grpc_code=\"{code}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_audit_events_follow_a_known_sequence_of_calls() {
    let cognito = ScriptedCognito::start().await;
    let running = Running::start(command(&[
        "--region",
        "eu-west-1",
        "--cognito-endpoint",
        &cognito.url,
        "--admin-listen",
        "127.0.0.1:0",
        "--verify-limit-per-sec",
        "1",
    ]))
    .await;
    let admin = admin_addr(&running).await;
    let before = scrape(&admin).await;
    let channel: Channel = running.channel().await;
    let mut client = Client::new(channel);
    let token = token();

    // 1. a code sent (OK), 2. a wrong code, 3. Cognito throttles a send,
    // 4. a verify over this replica's rate limit (never reaches Cognito).
    cognito.push(Reply::ok(json!({"CodeDeliveryDetails": {
        "Destination": "d***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}})));
    client
        .get_user_attribute_verification_code(with_traceparent(send_request(&token, "email")))
        .await
        .unwrap();
    cognito.push(Reply::error(
        "CodeMismatchException",
        "Invalid verification code provided, please try again.",
    ));
    let wrong = client
        .verify_user_attribute(verify_request(&token, "email", SECRET_CODE))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    cognito.push(Reply::error(
        "TooManyRequestsException",
        "Too many requests",
    ));
    let throttled = client
        .get_user_attribute_verification_code(send_request(&token, "email"))
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted);
    // Verify again until this replica's limit (1 per second) refuses; on a
    // slow machine one may be admitted first (Cognito's default answer: OK).
    let mut admitted = 0.0;
    loop {
        match client
            .verify_user_attribute(verify_request(&token, "email", SECRET_CODE))
            .await
        {
            Ok(_) => admitted += 1.0,
            Err(limited) => {
                assert_eq!(limited.code(), Code::ResourceExhausted);
                break;
            }
        }
        assert!(admitted < 10.0, "the rate limit never refused");
    }
    assert_eq!(cognito.requests().len(), 3 + admitted as usize);

    let after = scrape(&admin).await;
    let get = "GetUserAttributeVerificationCode";
    let verify = "VerifyUserAttribute";
    let expected = [
        (handled(get, "OK"), 1.0),
        (handled(get, "ResourceExhausted"), 1.0),
        (handled(verify, "InvalidArgument"), 1.0),
        (handled(verify, "ResourceExhausted"), 1.0),
        (handled(verify, "OK"), admitted),
        (format!("grpc_server_started_total{{grpc_type=\"unary\",grpc_service=\"cognito.verify.v1.UserAttributeVerificationService\",grpc_method=\"{get}\"}}"), 2.0),
        (format!("grpc_server_handling_seconds_count{{grpc_type=\"unary\",grpc_service=\"cognito.verify.v1.UserAttributeVerificationService\",grpc_method=\"{verify}\"}}"), 2.0 + admitted),
        (format!("cognito_verify_cognito_requests_total{{operation=\"{get}\",outcome=\"ok\"}}"), 1.0),
        (format!("cognito_verify_cognito_requests_total{{operation=\"{get}\",outcome=\"TooManyRequestsException\"}}"), 1.0),
        (format!("cognito_verify_cognito_requests_total{{operation=\"{verify}\",outcome=\"CodeMismatchException\"}}"), 1.0),
        (format!("cognito_verify_cognito_request_duration_seconds_count{{operation=\"{verify}\"}}"), 1.0 + admitted),
        ("cognito_verify_rejected_total{reason=\"rate_limited\"}".to_owned(), 1.0),
        ("cognito_verify_codes_sent_total{medium=\"email\"}".to_owned(), 1.0),
        ("cognito_verify_attributes_verified_total{attribute=\"email\"}".to_owned(), admitted),
        ("cognito_verify_in_flight".to_owned(), 0.0),
    ];
    for (series, want) in &expected {
        assert_eq!(delta(&before, &after, series), *want, "{series}");
    }
    assert_eq!(
        after["cognito_verify_build_info{version=\"0.1.0\"}"], 1.0,
        "{after:?}"
    );
    assert!(after["process_resident_memory_bytes"] > 1e6);
    assert!(after["cognito_verify_connections_open"] >= 1.0);

    let (code, log) = running.terminate().await;
    assert_eq!(code, 0, "{log}");
    let audit: Vec<Json> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect();
    assert_eq!(audit.len(), 4 + admitted as usize, "{log}");
    let common = |e: &Json| {
        assert_eq!(e["user.pool"], POOL, "{e}");
        assert_eq!(e["user.sub"], SUB, "{e}");
        assert_eq!(e["claims"], "unverified", "{e}");
        assert_eq!(e["attribute"], "email", "{e}");
        assert!(
            e["peer.address"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{e}"
        );
        assert!(e["timestamp"].is_string(), "{e}");
    };
    audit.iter().for_each(common);
    let fields =
        |e: &Json, keys: &[&str]| -> Vec<Json> { keys.iter().map(|k| e[*k].clone()).collect() };
    let keys = [
        "event",
        "grpc.code",
        "reason",
        "destination",
        "medium",
        "aws.request_id",
        "trace_id",
    ];
    assert_eq!(
        fields(&audit[0], &keys),
        json!([
            "send",
            "Ok",
            null,
            "d***@e***",
            "EMAIL",
            "req-ok-1",
            TRACE_ID
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(
        fields(&audit[1], &keys),
        json!([
            "verify",
            "InvalidArgument",
            "CODE_MISMATCH",
            null,
            null,
            "req-CodeMismatchException",
            null
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(
        fields(&audit[2], &keys),
        json!([
            "send",
            "ResourceExhausted",
            "TOO_MANY_REQUESTS",
            null,
            null,
            "req-TooManyRequestsException",
            null
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    // Refused by the rate limit, after the token check: who it was is known.
    let refused = audit.last().unwrap();
    common(refused);
    assert_eq!(refused["event"], "verify");
    assert_eq!(refused["grpc.code"], "ResourceExhausted");
    assert_eq!(refused["reason"], "RATE_LIMITED");
    for secret in [token.as_str(), "U0VDUkVULXNpZ25hdHVyZQ", SECRET_CODE] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_send_is_still_counted_audited_and_logged() {
    let cognito = ScriptedCognito::start().await;
    let running = Running::start(command(&[
        "--region",
        "eu-west-1",
        "--cognito-endpoint",
        &cognito.url,
        "--admin-listen",
        "127.0.0.1:0",
    ]))
    .await;
    let admin = admin_addr(&running).await;
    let before = scrape(&admin).await;
    let mut client = Client::new(running.channel().await);
    cognito.push(
        Reply::ok(json!({"CodeDeliveryDetails": {
            "Destination": "+*******0100", "DeliveryMedium": "SMS", "AttributeName": "phone_number"}}))
        .after(Duration::from_millis(800)),
    );
    // The caller gives up (its stream is reset) while Cognito is sending.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        client.get_user_attribute_verification_code(send_request(&token(), "email")),
    )
    .await;
    assert!(gave_up.is_err(), "the call was not cancelled: {gave_up:?}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let after = scrape(&admin).await;
    let get = "GetUserAttributeVerificationCode";
    for (series, want) in [
        (handled(get, "Canceled"), 1.0),
        (
            "cognito_verify_codes_sent_total{medium=\"sms\"}".to_owned(),
            1.0,
        ),
        (
            format!("cognito_verify_cognito_requests_total{{operation=\"{get}\",outcome=\"ok\"}}"),
            1.0,
        ),
        ("cognito_verify_in_flight".to_owned(), 0.0),
    ] {
        assert_eq!(delta(&before, &after, &series), want, "{series}");
    }
    let (code, log) = running.terminate().await;
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("rpc cancelled"), "{log}");
    let audit: Vec<Json> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect();
    assert_eq!(audit.len(), 1, "{log}");
    assert_eq!(audit[0]["grpc.code"], "Ok");
    assert_eq!(audit[0]["medium"], "SMS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_has_its_own_output_and_callers_headers_stay_out_of_the_log() {
    use std::process::Stdio;
    use tokio::io::AsyncReadExt as _;

    let cognito = ScriptedCognito::start().await;
    let mut cmd = command(&[
        "--region",
        "eu-west-1",
        "--cognito-endpoint",
        &cognito.url,
        "--audit-log",
        "stdout",
        "--log-filter",
        "info",
    ]);
    cmd.stdout(Stdio::piped());
    let mut running = Running::start(cmd).await;
    let mut stdout = running.child.stdout.take().unwrap();
    let mut client = Client::new(running.channel().await);
    let mut request = Request::new(send_request(&token(), "email"));
    // Malformed baggage and tracestate, as a hostile caller sends them.
    let junk = vec!["x"; 64].join(",");
    request
        .metadata_mut()
        .insert("baggage", junk.parse().unwrap());
    request
        .metadata_mut()
        .insert("tracestate", "%%%,===".parse().unwrap());
    client
        .get_user_attribute_verification_code(request)
        .await
        .unwrap();

    let (code, log) = running.terminate().await;
    assert_eq!(code, 0, "{log}");
    let mut audit = String::new();
    stdout.read_to_string(&mut audit).await.unwrap();
    let events: Vec<Json> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["event"], "send");
    assert!(
        !log.contains("\"target\":\"audit\""),
        "audit in the service log: {log}"
    );
    assert!(!log.contains("WARN"), "a warning: {log}");
    assert!(
        !log.contains("x,x,x"),
        "the caller's baggage reached the log: {log}"
    );
}
