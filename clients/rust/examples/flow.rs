//! The whole flow against `cognito-verify dev`: request a code for `email`,
//! read it from the embedded backend's outbox, verify it, then request again
//! and show the refusal (`SEND_COOLDOWN`) with its retry delay; last, ask
//! where the user stands (GetVerificationStatus): the email verified, as
//! the backend holds it, and the cooldown the refusal named.
//!
//! ```text
//! cognito-verify dev            # prints `export TOKEN=...`
//! COGNITO_VERIFY_TOKEN=$TOKEN cargo run -p cognito-verify-client --example flow
//! ```
//!
//! `COGNITO_VERIFY_ADDR` (default `127.0.0.1:50051`) and
//! `COGNITO_VERIFY_EMULATOR_URL` (default `http://127.0.0.1:9229`) point
//! elsewhere. Exits non-zero, saying why, if any step does not do what it says.

use std::{env, process::ExitCode, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use cognito_verify_client::{Client, ErrorReason, SendCode, Verify};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::{client::legacy::Client as HttpClient, rt::TokioExecutor};

type Failure = Box<dyn std::error::Error>;

const ATTRIBUTE: &str = "email";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flow failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Failure> {
    let addr = env::var("COGNITO_VERIFY_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let emulator =
        env::var("COGNITO_VERIFY_EMULATOR_URL").unwrap_or_else(|_| "http://127.0.0.1:9229".into());
    let token = env::var("COGNITO_VERIFY_TOKEN").map_err(|_| {
        "COGNITO_VERIFY_TOKEN is not set: the access token `cognito-verify dev` prints"
    })?;
    let username = token_username(&token)?;

    // Connect: plaintext here; for TLS give an https:// address and
    // `.ca_file(...)`, and for mTLS `.identity_files(cert, key)` too.
    let client = Client::builder(&addr)
        .timeout(Duration::from_secs(5))
        .connect()
        .await?;

    // 1. Request a code.
    let sent = client.send_code(SendCode::new(&token, ATTRIBUTE)).await?;
    println!(
        "code sent to {} by {:?}",
        sent.destination,
        sent.delivery_medium()
    );

    // 2. Read it from the backend's outbox (where `dev` delivers it).
    let code = latest_code(&emulator, &username).await?;
    println!("code read from the outbox of user {username}");

    // 3. Verify it.
    client.verify(Verify::new(&token, ATTRIBUTE, code)).await?;
    println!("{ATTRIBUTE} verified");

    // 4. Request again at once: refused, with the wait.
    match client.send_code(SendCode::new(&token, ATTRIBUTE)).await {
        Ok(_) => return Err("a second send within the cooldown was not refused".into()),
        Err(e) if e.reason() == Some(ErrorReason::SendCooldown) => {
            let wait = e
                .retry_after()
                .ok_or("SEND_COOLDOWN came without a retry delay")?;
            println!(
                "second send refused: {} ({:?}), retry after {} ms",
                e.raw_reason().unwrap_or_default(),
                e.code(),
                wait.as_millis()
            );
        }
        Err(e) => return Err(format!("expected SEND_COOLDOWN, got {e}").into()),
    }

    // 5. Where the user stands: read, nothing spent.
    let status = client.verification_status(&token).await?;
    let email = status
        .attributes
        .iter()
        .find(|a| a.attribute_name == ATTRIBUTE)
        .ok_or("the status has no email")?;
    if !email.verified || email.send_blocked_by() != ErrorReason::SendCooldown {
        return Err(format!("expected a verified email in its cooldown, got {email:?}").into());
    }
    let next = email.next_send_in.unwrap_or_default();
    println!(
        "status: {ATTRIBUTE} verified, next code in {} s ({}), {} codes left this hour",
        next.seconds,
        email.send_blocked_by().as_str_name(),
        status
            .sends_left
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
    );
    Ok(())
}

/// The `username` claim of the access token (the outbox names users by it).
fn token_username(token: &str) -> Result<String, Failure> {
    let payload = token.split('.').nth(1).ok_or("the token is not a JWT")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    Ok(claims["username"]
        .as_str()
        .ok_or("the token has no username claim")?
        .to_owned())
}

/// The newest code delivered for `username`'s `email`:
/// `GET /_emulator/outbox` lists `{"messages": [...]}` oldest first.
async fn latest_code(emulator: &str, username: &str) -> Result<String, Failure> {
    let http = HttpClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = format!("{emulator}/_emulator/outbox?attribute={ATTRIBUTE}").parse()?;
    let response = http.get(uri).await?;
    if !response.status().is_success() {
        return Err(format!("the outbox answered {}", response.status()).into());
    }
    let body = response.into_body().collect().await?.to_bytes();
    let outbox: serde_json::Value = serde_json::from_slice(&body)?;
    outbox["messages"]
        .as_array()
        .ok_or("the outbox has no messages list")?
        .iter()
        .rev()
        .find(|m| m["username"] == username)
        .and_then(|m| m["code"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("no code in the outbox for {username}'s {ATTRIBUTE}").into())
}
