//! The embedded backend and the facade wired to it, in-process on `:0`, plus
//! a direct AWS SDK client and the backend's HTTP controls.

use std::{sync::Arc, time::Duration};

use aws_sdk_cognitoidentityprovider::{config::Region, types::AuthFlowType, Client};
use axum::body::Bytes;
use cognito_emulator::{
    self as emulator, store::Seed, store::DEMO_CLIENT, store::DEMO_PASSWORD, store::DEMO_USER,
    Backend, Settings,
};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client as HttpClient, rt::TokioExecutor};
use serde_json::Value;
use tokio::sync::oneshot;

use super::Facade;

/// Backend + facade.
pub struct Stack {
    pub backend: Arc<Backend>,
    pub url: String,
    pub facade: Facade,
    _stop: oneshot::Sender<()>,
}

impl Stack {
    /// The demo seed, random codes.
    pub async fn start() -> Self {
        Self::with(Seed::demo(), None, &[]).await
    }

    /// Any seed, an optional fixed code, extra `serve` flags.
    pub async fn with(seed: Seed, fixed_code: Option<&str>, serve_flags: &[&str]) -> Self {
        let settings = Settings {
            fixed_code: fixed_code.map(str::to_owned),
            ..Settings::faithful()
        };
        let (url, backend, stop) = backend(seed, settings).await;
        let facade = Facade::start(&url, serve_flags).await;
        Self {
            backend,
            url,
            facade,
            _stop: stop,
        }
    }

    /// The AWS SDK pointed at the backend (one attempt, no credentials).
    pub async fn sdk(&self) -> Client {
        sdk_client(&self.url).await
    }

    /// Signs the demo user in with USER_PASSWORD_AUTH; the access token.
    pub async fn sign_in(&self) -> String {
        sign_in(&self.sdk().await, DEMO_USER, DEMO_PASSWORD).await
    }

    /// The newest code delivered for the demo user's `attribute`.
    pub async fn latest_code(&self, attribute: &str) -> String {
        let outbox = http_json(
            &self.url,
            "GET",
            &format!("/_emulator/outbox?username=demo&attribute={attribute}"),
            None,
        )
        .await
        .1;
        let messages = outbox["messages"].as_array().expect("messages");
        messages.last().expect("a delivered code")["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Removes every queued fault.
    pub async fn clear_faults(&self) {
        let (status, _) = http_json(&self.url, "DELETE", "/_emulator/faults", None).await;
        assert!(status == 204 || status == 200, "{status}");
    }

    /// Queues a fault.
    pub async fn inject(&self, fault: Value) {
        let (status, _) = http_json(&self.url, "POST", "/_emulator/faults", Some(fault)).await;
        assert_eq!(status, 204);
    }

    /// The backend's request counts per operation (`jwks:<pool>` for keys).
    pub async fn calls(&self) -> std::collections::BTreeMap<String, u64> {
        let (_, body) = http_json(&self.url, "GET", "/_emulator/calls", None).await;
        serde_json::from_value(body["calls"].clone()).expect("call counts")
    }

    /// Calls of one operation so far.
    pub async fn calls_of(&self, operation: &str) -> u64 {
        self.calls().await.get(operation).copied().unwrap_or(0)
    }

    /// Moves the backend's clock forward.
    pub async fn advance(&self, by: Duration) {
        let body = serde_json::json!({"advanceSeconds": by.as_secs()});
        let (status, _) = http_json(&self.url, "POST", "/_emulator/clock", Some(body)).await;
        assert_eq!(status, 200);
    }

    /// The demo user's attribute as GetUser reports it.
    pub async fn attribute(&self, token: &str, name: &str) -> Option<String> {
        let user = self
            .sdk()
            .await
            .get_user()
            .access_token(token)
            .send()
            .await
            .expect("GetUser");
        user.user_attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value().map(str::to_owned))
    }
}

/// The embedded backend alone on `127.0.0.1:0`: its URL, its state, and
/// the sender that stops it (dropping it stops it too).
pub async fn backend(
    seed: Seed,
    settings: Settings,
) -> (String, Arc<Backend>, oneshot::Sender<()>) {
    let bound = emulator::bind("127.0.0.1:0".parse().unwrap(), seed, settings)
        .await
        .unwrap();
    let url = format!("http://{}", bound.addr);
    let backend = Arc::clone(&bound.backend);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(emulator::serve(bound, async {
        let _ = stopped.await;
    }));
    (url, backend, stop)
}

/// The SDK pointed at `url`.
pub async fn sdk_client(url: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(cognito_verify::https_client())
        .region(Region::new("us-east-1"))
        .no_credentials()
        .endpoint_url(url)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    Client::new(&config)
}

/// USER_PASSWORD_AUTH through the demo client; the access token.
pub async fn sign_in(sdk: &Client, username: &str, password: &str) -> String {
    let out = sdk
        .initiate_auth()
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .client_id(DEMO_CLIENT)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .expect("InitiateAuth");
    out.authentication_result()
        .unwrap()
        .access_token()
        .unwrap()
        .to_owned()
}

/// One HTTP request with an optional JSON body; the status and JSON answer
/// (`null` when the body is empty or not JSON).
pub async fn http_json(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, bytes) = http(
        base,
        method,
        path,
        &[],
        body.map(|b| b.to_string()).unwrap_or_default(),
    )
    .await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// One raw HTTP request; the status, headers and body.
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, http::HeaderMap, Bytes) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if !body.is_empty() && headers.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}
