//! A client opening connections in a loop and holding them, against the
//! facade with its default connection settings, plaintext and TLS: RSS must
//! stay under 100 MiB, connections over `--max-connections` must be closed at
//! once, a caller whose connection was open before must still be answered,
//! and new connections must be served again once the flood ends.

use std::{sync::Arc, time::Duration};

use cognito_verify::proto::user_attribute_verification_service_client::UserAttributeVerificationServiceClient as Grpc;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::{
    procs::{self, Proc},
    requests::send_request,
    scenarios::{check, Check},
};

/// The default `--max-connections` (see `src/config.rs`).
const DEFAULT_MAX_CONNECTIONS: usize = 2_048;
/// HTTP/2 client preface and an empty SETTINGS frame.
const HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
/// Connections opened at once by the flood.
const PARALLEL: usize = 64;

/// What one flood measured.
#[derive(Debug, Serialize)]
pub struct Flood {
    pub tls: bool,
    pub attempts: usize,
    pub admitted: usize,
    pub refused: usize,
    pub idle_rss_kib: u64,
    pub flood_rss_kib: u64,
    pub peak_rss_kib: u64,
}

/// Floods a fresh facade (plaintext, then TLS) with `attempts` connections.
pub async fn run(backend_url: &str, token: &str, attempts: usize) -> (Vec<Flood>, Vec<Check>) {
    let mut floods = Vec::new();
    let mut checks = Vec::new();
    let dir = std::env::temp_dir().join(format!("cognito-verify-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new(&dir);
    for tls in [false, true] {
        floods.push(
            one(
                backend_url,
                token,
                attempts,
                tls.then_some(&pki),
                &mut checks,
            )
            .await,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    (floods, checks)
}

async fn one(
    backend_url: &str,
    token: &str,
    attempts: usize,
    pki: Option<&Pki>,
    checks: &mut Vec<Check>,
) -> Flood {
    let tls = pki.is_some();
    let label = if tls { "flood (TLS)" } else { "flood" };
    let (facade, addr) = start(backend_url, pki).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_rss_kib = facade.rss_kib().0;

    let caller = Grpc::new(channel(&addr, pki).await);
    let call = |mut caller: Grpc<Channel>| {
        let token = token.to_owned();
        async move {
            caller
                .get_user_attribute_verification_code(send_request(&token, "email"))
                .await
                .map(drop)
        }
    };
    call(caller.clone()).await.expect("a call before the flood");

    // Open connections PARALLEL at a time; keep those the server answers.
    let mut held = Vec::new();
    let mut refused = 0;
    let mut opened = 0;
    while opened < attempts {
        let batch = PARALLEL.min(attempts - opened);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            set.spawn(open(addr.clone(), pki.map(|p| Arc::clone(&p.client))));
        }
        while let Some(result) = set.join_next().await {
            match result.expect("flood task") {
                Some(conn) => held.push(conn),
                None => refused += 1,
            }
        }
        opened += batch;
    }
    let admitted = held.len();
    let (flood_rss_kib, _) = facade.rss_kib();
    let served_during = call(caller).await;
    drop(held);

    // Freed slots are usable again once the server has seen the closes.
    let mut served_after = false;
    for _ in 0..50 {
        if let Some(fresh) = try_channel(&addr, pki).await {
            if call(Grpc::new(fresh)).await.is_ok() {
                served_after = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak_rss_kib = facade.rss_kib().1;
    drop(facade);

    let mib = |kib: u64| kib as f64 / 1024.0;
    check(
        checks,
        &format!("{label}: facade RSS <= 100 MiB"),
        peak_rss_kib <= 100 * 1024,
        format!(
            "idle {:.1} MiB, {:.1} MiB holding {admitted} connections, peak {:.1} MiB",
            mib(idle_rss_kib),
            mib(flood_rss_kib),
            mib(peak_rss_kib)
        ),
    );
    // The caller's own connection holds one slot.
    let expected = DEFAULT_MAX_CONNECTIONS.min(attempts + 1) - 1;
    check(
        checks,
        &format!("{label}: connections over the bound closed at once"),
        admitted == expected && refused == attempts - expected,
        format!("{admitted} admitted, {refused} closed, of {attempts}"),
    );
    check(
        checks,
        &format!("{label}: an open connection is still served"),
        served_during.is_ok(),
        format!("{served_during:?}"),
    );
    check(
        checks,
        &format!("{label}: new connections served after the flood"),
        served_after,
        String::new(),
    );
    Flood {
        tls,
        attempts,
        admitted,
        refused,
        idle_rss_kib,
        flood_rss_kib,
        peak_rss_kib,
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One flood connection: TCP (+ TLS), the HTTP/2 preface; `Some` when the
/// server answers with its SETTINGS, `None` when it closes the connection.
async fn open(addr: String, tls: Option<Arc<rustls::ClientConfig>>) -> Option<Box<dyn Io>> {
    let tcp = TcpStream::connect(&addr).await.ok()?;
    let mut io: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(config) => Box::new(
            tokio_rustls::TlsConnector::from(config)
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .ok()?,
        ),
    };
    io.write_all(HELLO).await.ok()?;
    let mut first = [0u8; 9];
    match tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut first)).await {
        Ok(Ok(_)) => Some(io),
        _ => None,
    }
}

async fn try_channel(addr: &str, pki: Option<&Pki>) -> Option<Channel> {
    let endpoint = match pki {
        None => Channel::from_shared(format!("http://{addr}")).unwrap(),
        Some(pki) => {
            let port = addr.rsplit_once(':').unwrap().1;
            Channel::from_shared(format!("https://localhost:{port}"))
                .unwrap()
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
                        .domain_name("localhost"),
                )
                .unwrap()
        }
    };
    endpoint
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()
}

async fn channel(addr: &str, pki: Option<&Pki>) -> Channel {
    try_channel(addr, pki).await.expect("connects")
}

/// The facade with default connection settings (TLS when `pki` is set),
/// ready when health says SERVING (on the plaintext health listener with TLS).
async fn start(backend_url: &str, pki: Option<&Pki>) -> (Proc, String) {
    let Some(pki) = pki else {
        let (proc, addr, _) = procs::facade(backend_url, &[]).await;
        return (proc, addr);
    };
    let health = format!("127.0.0.1:{}", procs::free_port());
    let (cert, key) = (
        pki.cert.display().to_string(),
        pki.key.display().to_string(),
    );
    let tls = [
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--health-listen",
        &health,
    ];
    let (proc, addr, _) = procs::facade(backend_url, &tls).await;
    (proc, addr)
}

/// A CA, a server certificate for localhost, and a client configuration
/// trusting the CA.
struct Pki {
    ca_pem: String,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client: Arc<rustls::ClientConfig>,
}

impl Pki {
    fn new(dir: &std::path::Path) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "flood CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, server.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec()];
        Self {
            ca_pem: ca.pem(),
            cert: cert_path,
            key: key_path,
            client: Arc::new(client),
        }
    }
}
