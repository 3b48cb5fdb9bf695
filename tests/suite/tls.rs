//! TLS and mTLS on the gRPC port, over real sockets: who may connect, who may
//! call, certificate rotation while serving, failed handshakes, and the
//! plaintext health listener.

use std::{net::SocketAddr, time::Duration};

use cognito_verify::{
    metrics,
    proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::{transport::Channel, Code, Status};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};
use tonic_types::StatusExt;

use crate::common::{
    certs::{self, Ca, Leaf, Name, TempDir},
    send_request, Facade, Reply, ScriptedCognito, TOKEN,
};

const SERVICE: &str = "cognito.verify.v1.UserAttributeVerificationService";
const CHECKOUT: &str = "spiffe://example.org/ns/shop/sa/checkout";

async fn send(channel: Channel) -> Result<(), Status> {
    UserAttributeVerificationServiceClient::new(channel)
        .get_user_attribute_verification_code(send_request(TOKEN, "email"))
        .await
        .map(drop)
}

async fn health(channel: Channel, service: &str) -> Result<ServingStatus, Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(response.into_inner().status())
}

/// A call over a TLS channel with `client`'s certificate; a failed connect
/// counts as a failed call.
async fn send_as(addr: SocketAddr, ca: &Ca, client: Option<&Leaf>) -> Result<(), Status> {
    match certs::channel(addr, ca, client).await {
        Ok(channel) => send(channel).await,
        Err(e) => Err(Status::unavailable(format!("connect: {e}"))),
    }
}

async fn start(cognito: &ScriptedCognito, flags: &[String]) -> Facade {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Facade::start(&cognito.url, &flags).await
}

/// Polls `check` every 50 ms for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plaintext() {
    let ca = Ca::new("server CA");
    let dir = TempDir::new();
    let flags = certs::write_server_files(&dir, &ca.server("server-1"), None);
    let cognito = ScriptedCognito::start().await;
    let facade = start(&cognito, &flags).await;

    let channel = certs::channel(facade.addr, &ca, None).await.unwrap();
    assert_eq!(
        health(channel.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );
    send(channel).await.unwrap();
    assert_eq!(cognito.requests().len(), 1);

    // A plaintext HTTP/2 client on the TLS port gets nowhere.
    let plaintext = Channel::from_shared(format!("http://{}", facade.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    match plaintext.connect().await {
        Err(_) => {}
        Ok(channel) => assert!(send(channel).await.is_err()),
    }
    assert_eq!(
        cognito.requests().len(),
        1,
        "a plaintext call reached Cognito"
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn mtls_requires_a_certificate_from_the_client_ca() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let stranger = Ca::new("another CA");
    let dir = TempDir::new();
    let flags = certs::write_server_files(&dir, &ca.server("server-1"), Some(&clients));
    let cognito = ScriptedCognito::start().await;
    let facade = start(&cognito, &flags).await;

    send_as(facade.addr, &ca, None)
        .await
        .expect_err("no client certificate");
    let forged = stranger.client(Name::Uri(CHECKOUT));
    send_as(facade.addr, &ca, Some(&forged))
        .await
        .expect_err("a certificate from another CA");
    assert_eq!(cognito.requests().len(), 0);

    let checkout = clients.client(Name::Uri(CHECKOUT));
    send_as(facade.addr, &ca, Some(&checkout)).await.unwrap();
    assert_eq!(cognito.requests().len(), 1);
    facade.shutdown().await;
}

#[tokio::test]
async fn allow_caller_admits_the_listed_identities_only() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let dir = TempDir::new();
    let mut flags = certs::write_server_files(&dir, &ca.server("server-1"), Some(&clients));
    for id in [CHECKOUT, "billing.internal", "cn-client"] {
        flags.extend(["--allow-caller".to_owned(), id.to_owned()]);
    }
    let cognito = ScriptedCognito::start().await;
    let facade = start(&cognito, &flags).await;

    // The URI SAN wins over the DNS SAN, the DNS SAN over the CN.
    for allowed in [
        Name::Uri(CHECKOUT),
        Name::Dns("billing.internal"),
        Name::Cn("cn-client"),
    ] {
        let client = clients.client(allowed);
        send_as(facade.addr, &ca, Some(&client))
            .await
            .unwrap_or_else(|e| panic!("{allowed:?}: {e:?}"));
    }
    assert_eq!(cognito.requests().len(), 3);

    for (denied, identity) in [
        (
            Name::Uri("spiffe://example.org/ns/shop/sa/other"),
            "spiffe://example.org/ns/shop/sa/other",
        ),
        (Name::Dns("other.internal"), "other.internal"),
        (Name::Cn("cn-other"), "cn-other"),
    ] {
        let client = clients.client(denied);
        let channel = certs::channel(facade.addr, &ca, Some(&client))
            .await
            .unwrap();
        let status = send(channel.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{denied:?}");
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "CALLER_NOT_ALLOWED");
        assert_eq!(info.domain, "cognito-verify");
        assert_eq!(info.metadata["caller"], identity);
        assert!(status.message().contains(identity), "{}", status.message());
        // Health is not restricted: probes and balancers need it.
        assert_eq!(
            health(channel, SERVICE).await.unwrap(),
            ServingStatus::Serving
        );
    }
    assert_eq!(
        cognito.requests().len(),
        3,
        "a denied caller reached Cognito"
    );
    facade.shutdown().await;
}

#[tokio::test]
async fn certificates_and_client_ca_rotate_without_restart_or_cutting_connections() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA 1");
    let dir = TempDir::new();
    let server1 = ca.server("server-1");
    let mut flags = certs::write_server_files(&dir, &server1, Some(&clients));
    flags.extend(["--tls-reload-interval-secs".to_owned(), "1".to_owned()]);
    let cognito = ScriptedCognito::start().await;
    let facade = start(&cognito, &flags).await;
    assert_eq!(
        certs::presented_certificate(facade.addr, &ca).await,
        server1.der
    );

    // A call in flight across the rotation: its connection must not be cut.
    let client = clients.client(Name::Uri(CHECKOUT));
    let open = certs::channel(facade.addr, &ca, Some(&client))
        .await
        .unwrap();
    cognito.push(Reply::ok(json!({})).after(Duration::from_secs(3)));
    let in_flight = tokio::spawn(send(open.clone()));

    let server2 = ca.server("server-2");
    dir.write("key.pem", &server2.key_pem);
    dir.write("cert.pem", &server2.cert_pem);
    eventually("new handshakes present the new certificate", || async {
        certs::presented_certificate(facade.addr, &ca).await == server2.der
    })
    .await;
    in_flight
        .await
        .unwrap()
        .expect("the call in flight finished");
    send(open).await.expect("the open connection still serves");

    // Bad new files are refused (once seen on two polls in a row) and the
    // last good ones stay in force.
    let rejected = || metrics().tls_reloads().1;
    let before = rejected();
    dir.write("cert.pem", "not a certificate");
    eventually("the broken certificate is refused", || async {
        rejected() > before
    })
    .await;
    assert_eq!(
        certs::presented_certificate(facade.addr, &ca).await,
        server2.der
    );
    dir.write("cert.pem", &ca.server("server-3").cert_pem); // key is server-2's
    eventually("the mismatched key is refused", || async {
        rejected() > before + 1
    })
    .await;
    assert_eq!(
        certs::presented_certificate(facade.addr, &ca).await,
        server2.der
    );
    dir.write("cert.pem", &server2.cert_pem);

    // A new client CA: its certificates get in, the old CA's no longer do.
    let clients2 = Ca::new("client CA 2");
    dir.write("ca.pem", &clients2.pem());
    let newcomer = clients2.client(Name::Uri(CHECKOUT));
    eventually("the new client CA is in force", || async {
        send_as(facade.addr, &ca, Some(&newcomer)).await.is_ok()
    })
    .await;
    send_as(facade.addr, &ca, Some(&client))
        .await
        .expect_err("a certificate of the replaced client CA");
    facade.shutdown().await;
}

#[tokio::test]
async fn failed_and_stalled_handshakes_do_not_disturb_the_server() {
    let ca = Ca::new("server CA");
    let dir = TempDir::new();
    let mut flags = certs::write_server_files(&dir, &ca.server("server-1"), None);
    flags.extend(["--handshake-timeout-secs".to_owned(), "1".to_owned()]);
    let cognito = ScriptedCognito::start().await;
    let facade = start(&cognito, &flags).await;

    // Garbage instead of a ClientHello: closed.
    let mut garbage = tokio::net::TcpStream::connect(facade.addr).await.unwrap();
    garbage
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), garbage.read(&mut buf))
        .await
        .expect("closed at once");
    assert!(matches!(read, Ok(0) | Ok(7) | Err(_)), "{read:?}"); // EOF, an alert, or a reset

    // Silence: closed after the handshake timeout.
    let mut silent = tokio::net::TcpStream::connect(facade.addr).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("a silent connection is closed after the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // Meanwhile and afterwards, a real client is served.
    let channel = certs::channel(facade.addr, &ca, None).await.unwrap();
    send(channel).await.unwrap();
    facade.shutdown().await;
}

#[tokio::test]
async fn the_health_listener_is_plaintext_and_serves_only_health() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let dir = TempDir::new();
    let mut flags = certs::write_server_files(&dir, &ca.server("server-1"), Some(&clients));
    flags.extend(
        [
            "--health-listen",
            "127.0.0.1:0",
            "--shutdown-delay-secs",
            "2",
        ]
        .map(str::to_owned),
    );
    let cognito = ScriptedCognito::start().await;
    let mut facade = start(&cognito, &flags).await;
    let health_addr = facade.health.expect("a health listener");
    let plaintext = Channel::from_shared(format!("http://{health_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    assert_eq!(
        health(plaintext.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health(plaintext.clone(), SERVICE).await.unwrap(),
        ServingStatus::Serving
    );
    let status = send(plaintext.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(cognito.requests().len(), 0);

    // It follows the shutdown sequence: NOT_SERVING during the delay.
    facade.begin_shutdown();
    eventually("health is NOT_SERVING", || {
        let plaintext = plaintext.clone();
        async move { health(plaintext, "").await.ok() == Some(ServingStatus::NotServing) }
    })
    .await;
    facade.shutdown().await;
}
