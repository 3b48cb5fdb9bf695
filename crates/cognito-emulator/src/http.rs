//! The backend's HTTP surface: the Cognito API on `POST /`, the JWKS of each
//! pool, and the test controls under `/_emulator/` (a path the JSON protocol,
//! which only uses `/`, cannot collide with).

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    faults::Fault,
    ops,
    protocol::{self, ApiError, TARGET_PREFIX},
    Backend,
};

/// Largest accepted request body. Cognito's own inputs for these operations
/// stay far below it.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The router.
pub fn router(backend: Arc<Backend>) -> Router {
    Router::new()
        .route("/", post(api))
        .route("/{pool}/.well-known/jwks.json", get(jwks))
        .route("/_emulator/outbox", get(outbox).delete(clear_outbox))
        .route(
            "/_emulator/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_emulator/clock", get(clock).post(advance_clock))
        .route("/_emulator/calls", get(calls).delete(clear_calls))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(backend)
}

async fn api(State(backend): State<Arc<Backend>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or_default()
        .to_owned();
    backend.calls.count(&operation);
    if let Some(fault) = backend.faults.take(&operation) {
        tokio::time::sleep(fault.latency()).await;
        if fault.answers() {
            return fault_response(fault, &request_id);
        }
    }
    if backend.settings.constant_response {
        if let Some(output) = constant_output(&operation) {
            return protocol::ok(output, &request_id);
        }
    }
    let input: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return ApiError::new(
                "SerializationException",
                "Start of structure or map found where not expected.",
            )
            .into_response(&request_id)
        }
    };
    match ops::dispatch(&backend, &operation, input) {
        Ok((output, deliveries)) => {
            for delivery in deliveries {
                backend.outbox.push(delivery);
            }
            protocol::ok(&output, &request_id)
        }
        Err(err) => err.into_response(&request_id),
    }
}

/// The fixed answers of `--constant-response`.
fn constant_output(operation: &str) -> Option<&'static Value> {
    static GET: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
        || json!({"CodeDeliveryDetails": {"Destination": "d***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}}),
    );
    static EMPTY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
    match operation {
        "GetUserAttributeVerificationCode" => Some(&GET),
        "VerifyUserAttribute" => Some(&EMPTY),
        _ => None,
    }
}

fn fault_response(fault: Fault, request_id: &str) -> Response {
    if let Some(body) = fault.body {
        let status = StatusCode::from_u16(fault.http_status.unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let content_type = fault.content_type.unwrap_or_else(|| "text/html".to_owned());
        return (status, [("content-type", content_type)], body).into_response();
    }
    let mut err = ApiError::new(
        fault
            .error_type
            .as_deref()
            .unwrap_or("InternalErrorException"),
        fault.message.unwrap_or_else(|| "injected fault".to_owned()),
    );
    if let Some(status) = fault.http_status.and_then(|s| StatusCode::from_u16(s).ok()) {
        err.status = status;
    }
    err.into_response(request_id)
}

async fn jwks(State(backend): State<Arc<Backend>>, Path(pool): Path<String>) -> Response {
    let known = backend.directory.pool(&pool).is_some();
    if known {
        backend.calls.count(&format!("jwks:{pool}"));
    } else {
        backend.calls.count(super::calls::UNKNOWN_POOL_JWKS);
    }
    // Faults for the operation "jwks" make the key sets unavailable.
    if let Some(fault) = backend.faults.take_exact("jwks") {
        tokio::time::sleep(fault.latency()).await;
        if fault.answers() {
            return fault_response(fault, &uuid::Uuid::new_v4().to_string());
        }
    }
    if !known {
        return (StatusCode::NOT_FOUND, "no such user pool").into_response();
    }
    Json(backend.signer.jwks().clone()).into_response()
}

async fn calls(State(backend): State<Arc<Backend>>) -> Json<Value> {
    Json(json!({ "calls": backend.calls.snapshot() }))
}

async fn clear_calls(State(backend): State<Arc<Backend>>) -> StatusCode {
    backend.calls.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct OutboxQuery {
    username: Option<String>,
    attribute: Option<String>,
}

async fn outbox(State(backend): State<Arc<Backend>>, Query(q): Query<OutboxQuery>) -> Json<Value> {
    Json(json!({"messages": backend.outbox.list(q.username.as_deref(), q.attribute.as_deref())}))
}

async fn clear_outbox(State(backend): State<Arc<Backend>>) -> StatusCode {
    backend.outbox.clear();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(backend): State<Arc<Backend>>) -> Json<Value> {
    Json(json!({"faults": backend.faults.list()}))
}

async fn add_fault(State(backend): State<Arc<Backend>>, Json(fault): Json<Fault>) -> Response {
    if backend.faults.add(fault) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            "count must be at least 1, and at most 1000 faults can be queued",
        )
            .into_response()
    }
}

async fn clear_faults(State(backend): State<Arc<Backend>>) -> StatusCode {
    backend.faults.clear();
    StatusCode::NO_CONTENT
}

async fn clock(State(backend): State<Arc<Backend>>) -> Json<Value> {
    Json(json!({"now": backend.clock.now()}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Advance {
    advance_seconds: u64,
}

async fn advance_clock(State(backend): State<Arc<Backend>>, Json(a): Json<Advance>) -> Response {
    match backend
        .clock
        .advance(Duration::from_secs(a.advance_seconds))
    {
        Some(now) => Json(json!({"now": now})).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            "advanceSeconds would move the clock more than 100 years ahead in all",
        )
            .into_response(),
    }
}
