//! The real binary, run as a process: its exit codes, its signals, its
//! environment, and what it writes to its log.

use std::process::Stdio;

use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient;
use serde_json::json;
use tokio::process::Command;
use tonic::Request;

use crate::common::{
    binary::{command, run_to_exit, Running, BIN},
    send_request, verify_request, Reply, ScriptedCognito, TOKEN,
};

/// A well-formed token (it passes the local check) whose signature part
/// is easy to find in a log.
const SECRET_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5In0.eyJzdWIiOiIxMTExMTExMS0yMjIyLTQzMzMtODQ0NC01NTU1NTU1NTU1NTUiLCJpc3MiOiJodHRwczovL2NvZ25pdG8taWRwLnVzLWVhc3QtMS5hbWF6b25hd3MuY29tL3VzLWVhc3QtMV9UZXN0MDAwMSIsImNsaWVudF9pZCI6InRlc3RjbGllbnQwMDAwMDAwMDAwMDAwMDAxIiwidG9rZW5fdXNlIjoiYWNjZXNzIiwic2NvcGUiOiJhd3MuY29nbml0by5zaWduaW4udXNlci5hZG1pbiIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwLCJ1c2VybmFtZSI6InRlc3QifQ.SECRETaccessTOKENsig-NATURE_";
const SECRET_CODE: &str = "918273";

#[tokio::test]
async fn no_token_or_code_reaches_the_log_even_at_trace() {
    let cognito = ScriptedCognito::start().await;
    let args = [
        "--region",
        "eu-west-1",
        "--cognito-endpoint",
        &cognito.url,
        "--log-filter",
        "trace",
    ];
    let running = Running::start(command(
        &[&args[..], &["--verify-limit-per-sec", "3"]].concat(),
    ))
    .await;
    let mut client = UserAttributeVerificationServiceClient::new(running.channel().await);

    cognito.push(Reply::ok(json!({"CodeDeliveryDetails": {"Destination": "d***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}})));
    cognito.push(Reply::ok(json!({})));
    cognito.push(Reply::error(
        "CodeMismatchException",
        "Invalid verification code provided, please try again.",
    ));
    cognito.push(Reply::error(
        "InvalidLambdaResponseException",
        "lambda said no",
    ));
    cognito.push(Reply::raw(
        502,
        &[("content-type", "text/html")],
        "<html>bad gateway</html>",
    ));
    let get = send_request(SECRET_TOKEN, "email");
    client
        .get_user_attribute_verification_code(get)
        .await
        .unwrap();
    let verify = |token: &str, code: &str| verify_request(token, "email", code);
    client
        .verify_user_attribute(verify(SECRET_TOKEN, SECRET_CODE))
        .await
        .unwrap();
    client
        .verify_user_attribute(verify(SECRET_TOKEN, SECRET_CODE))
        .await
        .unwrap_err();
    // Through metadata, and rate limited (limit 3 per second).
    let mut req = Request::new(verify("", SECRET_CODE));
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {SECRET_TOKEN}").parse().unwrap(),
    );
    client.verify_user_attribute(req).await.unwrap_err();
    client
        .verify_user_attribute(verify(SECRET_TOKEN, SECRET_CODE))
        .await
        .unwrap_err();
    // Invalid: the code has whitespace, the token a bad character.
    client
        .verify_user_attribute(verify(SECRET_TOKEN, "918 273"))
        .await
        .unwrap_err();
    client
        .verify_user_attribute(verify("eyJSECRET+bad", SECRET_CODE))
        .await
        .unwrap_err();

    let (code, log) = running.terminate().await;
    assert_eq!(code, 0);
    // Four calls reached Cognito, five if the rate limiter had refilled by the
    // fifth; the two invalid calls never did.
    let reached = cognito.requests().len();
    assert!(reached == 4 || reached == 5, "{reached} requests: {log}");
    // The log did capture the run: spans, request ids, the server-side error.
    assert!(
        log.contains("rpc finished") && log.contains("req-ok-1"),
        "{log}"
    );
    assert!(log.contains("InvalidLambdaResponseException"), "{log}");
    for secret in [
        SECRET_TOKEN,
        "SECRETaccessTOKEN",
        "eyJSECRET",
        SECRET_CODE,
        "918 273",
    ] {
        assert!(!log.contains(secret), "{secret:?} leaked into the log");
    }
}

#[tokio::test]
async fn sigterm_exits_zero_and_endpoint_env_is_honoured() {
    let cognito = ScriptedCognito::start().await;
    let mut cmd = command(&[]);
    cmd.env("AWS_REGION", "us-west-2")
        .env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", &cognito.url);
    let running = Running::start(cmd).await;
    let mut client = UserAttributeVerificationServiceClient::new(running.channel().await);
    let req = verify_request(TOKEN, "email", "1");
    client
        .verify_user_attribute(req)
        .await
        .expect("reached Cognito through the SDK's endpoint variable");
    assert_eq!(cognito.requests().len(), 1);
    let (code, log) = running.terminate().await;
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("drained"), "{log}");
}

#[tokio::test]
async fn invalid_configuration_is_one_line_and_exit_64() {
    let cases: [&[&str]; 5] = [
        &["--region", "x", "--listen", "nowhere"],
        &["--region", "x", "--cognito-endpoint", "ftp://host"],
        &["--region", "x", "--cognito-call-timeout-ms", "0"],
        &["--region", "x", "--log-filter", "[[["],
        &[], // no region anywhere
    ];
    for args in cases {
        let (code, stderr) = run_to_exit(&mut command(args)).await;
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("cognito-verify: "), "{stderr}");
    }
    let (code, stderr) = run_to_exit(
        command(&[])
            .env("COGNITO_VERIFY_REGION", "x")
            .arg("--bogus"),
    )
    .await;
    assert_eq!(code, 64, "{stderr}");
}

#[tokio::test]
async fn a_bad_seed_is_a_configuration_error() {
    let dir = std::env::temp_dir().join(format!("cognito-verify-bad-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let duplicate = dir.join("dup.json");
    std::fs::write(
        &duplicate,
        r#"{"Pools":[{"Id":"p","Clients":[{"ClientId":"c"}],"Users":[
            {"Username":"a","Password":"x"},{"Username":"a","Password":"y"}]}]}"#,
    )
    .unwrap();
    let missing = dir.join("missing.yaml");
    for (subcommand, seed) in [("emulator", &duplicate), ("dev", &missing)] {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .args([subcommand, "--seed", seed.to_str().unwrap()])
            .stdout(Stdio::null());
        let (code, stderr) = run_to_exit(&mut cmd).await;
        assert_eq!(code, 64, "{subcommand}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn env_fallbacks_configure_the_server() {
    let cognito = ScriptedCognito::start().await;
    let mut cmd = command(&[]);
    cmd.env("COGNITO_VERIFY_REGION", "ap-south-1")
        .env("COGNITO_VERIFY_COGNITO_ENDPOINT", &cognito.url)
        .env("COGNITO_VERIFY_VERIFY_LIMIT_PER_SEC", "1");
    let running = Running::start(cmd).await;
    let mut client = UserAttributeVerificationServiceClient::new(running.channel().await);
    let req = || verify_request(TOKEN, "email", "1");
    client.verify_user_attribute(req()).await.unwrap();
    let limited = client.verify_user_attribute(req()).await.unwrap_err();
    assert_eq!(limited.code(), tonic::Code::ResourceExhausted);
    let (code, _) = running.terminate().await;
    assert_eq!(code, 0);
}

/// Every flag of every subcommand's `--help` is in the README's flag index
/// and in docs/operations.md, where its variable, default and meaning are.
#[tokio::test]
async fn every_flag_is_documented() {
    let readme = include_str!("../../README.md");
    let operations = include_str!("../../docs/operations.md");
    let mut flags = 0;
    for sub in ["serve", "dev", "emulator"] {
        let out = Command::new(BIN)
            .args([sub, "--help"])
            .env_clear()
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{sub} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        for word in help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            let Some(name) = word.strip_prefix("--") else {
                continue;
            };
            if name.is_empty() || matches!(name, "help" | "version") {
                continue;
            }
            flags += 1;
            let flag = format!("`--{name}`");
            assert!(readme.contains(&flag), "README.md lacks {flag} ({sub})");
            assert!(
                operations.contains(&format!("--{name}")),
                "docs/operations.md lacks --{name} ({sub})"
            );
        }
    }
    assert!(flags > 60, "only {flags} flags read from --help");
}
