//! Certificates for the TLS tests (rcgen), files to hold them, and TLS
//! clients: tonic channels with or without a client certificate, and a bare
//! rustls handshake that shows which certificate the server presents.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

/// How a client certificate names its holder.
#[derive(Debug, Clone, Copy)]
pub enum Name<'a> {
    /// A URI SAN (e.g. a SPIFFE ID), plus a DNS SAN and a CN that must lose.
    Uri(&'a str),
    /// A DNS SAN, plus a CN that must lose.
    Dns(&'a str),
    /// Only the subject's common name (CN).
    Cn(&'a str),
}

impl Ca {
    /// A new self-signed CA.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1; `cn` tells
    /// certificates apart.
    pub fn server(&self, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate named as `name` says.
    pub fn client(&self, name: Name<'_>) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let cn = match name {
            Name::Uri(uri) => {
                params
                    .subject_alt_names
                    .push(SanType::URI(uri.try_into().unwrap()));
                params
                    .subject_alt_names
                    .push(SanType::DnsName("loses-to-uri.example".try_into().unwrap()));
                "loses-to-san"
            }
            Name::Dns(dns) => {
                params
                    .subject_alt_names
                    .push(SanType::DnsName(dns.try_into().unwrap()));
                "loses-to-san"
            }
            Name::Cn(cn) => cn,
        };
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cognito-verify-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` atomically (a temporary file renamed over it), as
    /// Kubernetes and cert-manager replace files.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    /// The path of `name` as a string, for flags.
    pub fn arg(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Server files for the facade: `cert.pem`, `key.pem`, and `ca.pem` (the
/// client CA) when `client_ca` is set. Returns the `serve` flags.
pub fn write_server_files(dir: &TempDir, server: &Leaf, client_ca: Option<&Ca>) -> Vec<String> {
    dir.write("cert.pem", &server.cert_pem);
    dir.write("key.pem", &server.key_pem);
    let mut flags = vec![
        "--tls-cert".to_owned(),
        dir.arg("cert.pem"),
        "--tls-key".to_owned(),
        dir.arg("key.pem"),
    ];
    if let Some(ca) = client_ca {
        dir.write("ca.pem", &ca.pem());
        flags.extend(["--tls-client-ca".to_owned(), dir.arg("ca.pem")]);
    }
    flags
}

/// A TLS channel to `addr` trusting `ca`, with `client` as its certificate.
pub async fn channel(
    addr: SocketAddr,
    ca: &Ca,
    client: Option<&Leaf>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(leaf) = client {
        tls = tls.identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem));
    }
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// The certificate the server presents to a new handshake (no client
/// certificate is offered, so this works whether or not mTLS is on: the
/// server's certificate arrives before it asks for the client's).
pub async fn presented_certificate(addr: SocketAddr, ca: &Ca) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    // TLS 1.3 completes the client's side before the server checks a client
    // certificate, so the handshake succeeds here even under mTLS.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}
