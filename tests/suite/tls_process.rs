//! The binary with TLS: bad TLS configuration is one line and exit 64, the
//! RPC's log line names the caller, and a bad certificate rotation is logged
//! while the previous certificate stays in force.

use std::time::Duration;

use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient;

use crate::common::{
    binary::{command, run_to_exit, Running},
    certs::{self, Ca, Name, TempDir},
    send_request, ScriptedCognito, TOKEN,
};

const CHECKOUT: &str = "spiffe://example.org/ns/shop/sa/checkout";

#[tokio::test]
async fn tls_configuration_errors_are_one_line_and_exit_64() {
    let ca = Ca::new("server CA");
    let server = ca.server("server-1");
    let other = ca.server("server-2");
    let dir = TempDir::new();
    let cert = dir
        .write("cert.pem", &server.cert_pem)
        .display()
        .to_string();
    let key = dir.write("key.pem", &server.key_pem).display().to_string();
    let other_key = dir.write("other.key", &other.key_pem).display().to_string();
    let garbage = dir
        .write("garbage.pem", "not PEM at all\n")
        .display()
        .to_string();
    let missing = dir.arg("missing.pem");

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--tls-cert", &cert], "--tls-key"),
        (vec!["--tls-key", &key], "--tls-cert"),
        (vec!["--tls-client-ca", &cert], "--tls-cert"),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--allow-caller",
                CHECKOUT,
            ],
            "--tls-client-ca",
        ),
        (
            vec!["--tls-cert", &missing, "--tls-key", &key],
            "missing.pem",
        ),
        (
            vec!["--tls-cert", &garbage, "--tls-key", &key],
            "garbage.pem",
        ),
        (vec!["--tls-cert", &cert, "--tls-key", &cert], "cert.pem"),
        (
            vec!["--tls-cert", &cert, "--tls-key", &other_key],
            "does not match",
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &garbage,
            ],
            "client CA",
        ),
    ];
    let key_body: String = server.key_pem.lines().nth(1).unwrap()[..16].to_owned();
    for (args, expected) in cases {
        let mut argv = vec!["--region", "eu-west-1"];
        argv.extend(&args);
        let (code, stderr) = run_to_exit(&mut command(&argv)).await;
        // The same, with the key pasted into the environment instead.
        if args.last() == Some(&server.key_pem.as_str()) {
            let mut cmd = command(&["--region", "eu-west-1", "--tls-cert", &cert]);
            cmd.env("COGNITO_VERIFY_TLS_KEY", &server.key_pem);
            let (env_code, env_stderr) = run_to_exit(&mut cmd).await;
            assert_eq!(env_code, 64, "{env_stderr}");
            assert!(
                !env_stderr.contains(&key_body),
                "key material in: {env_stderr}"
            );
            assert_eq!(env_stderr.trim_end().lines().count(), 1, "{env_stderr}");
        }
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("cognito-verify: "), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains(&key_body), "key material in: {stderr}");
        assert!(!stderr.contains("[45, 45"), "key bytes in: {stderr}");
    }
}

#[tokio::test]
async fn the_log_line_names_the_caller_and_a_bad_rotation_is_logged() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let dir = TempDir::new();
    let flags = certs::write_server_files(&dir, &ca.server("server-1"), Some(&clients));
    let cognito = ScriptedCognito::start().await;
    let mut argv: Vec<&str> = vec![
        "--region",
        "eu-west-1",
        "--cognito-endpoint",
        &cognito.url,
        "--tls-reload-interval-secs",
        "1",
    ];
    argv.extend(flags.iter().map(String::as_str));
    let running = Running::start(command(&argv)).await;
    let addr = running.addr.parse().unwrap();

    let client = clients.client(Name::Uri(CHECKOUT));
    let channel = certs::channel(addr, &ca, Some(&client)).await.unwrap();
    UserAttributeVerificationServiceClient::new(channel)
        .get_user_attribute_verification_code(send_request(TOKEN, "email"))
        .await
        .unwrap();

    dir.write("cert.pem", "-----BEGIN CERTIFICATE-----\nbroken\n");
    let logged = |needle: &str| {
        running
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(needle))
    };
    for _ in 0..100 {
        if logged("cannot be used") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Three more polls (1 s apart) of the same bad file: still one warning.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (code, log) = running.terminate().await;
    assert_eq!(code, 0, "{log}");

    let finished: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["fields"]["message"] == "rpc finished")
        .collect();
    assert_eq!(finished.len(), 1, "{log}");
    assert_eq!(finished[0]["span"]["caller"], CHECKOUT, "{log}");
    assert_eq!(finished[0]["span"]["client.address"], "127.0.0.1", "{log}");

    let warning = log
        .lines()
        .find(|l| l.contains("cannot be used"))
        .unwrap_or_else(|| panic!("no warning about the bad file: {log}"));
    assert!(
        warning.contains("WARN") && warning.contains("cert.pem"),
        "{warning}"
    );
    assert_eq!(
        log.matches("cannot be used").count(),
        1,
        "a bad file is reported once: {log}"
    );
}
