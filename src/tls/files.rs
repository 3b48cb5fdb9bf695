//! The TLS files and the rustls server configuration built from them.
//!
//! Every way a file can be wrong has its own message naming the file, because
//! a bad file at start-up is a configuration error (one line, exit 64) and a
//! bad file on reload is logged while the previous configuration stays.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    crypto::{aws_lc_rs, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig,
};

use crate::config::TlsConfig;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the {what} {}: {source}", .path.display())]
    Read {
        /// Which file: "TLS certificate", "TLS key", "client CA".
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind expected.
    #[error("the {what} {} holds no PEM {expected}{}", .path.display(), .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NoPem {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What was expected in it.
        expected: &'static str,
        /// The PEM parser's complaint, when it had one.
        detail: Option<String>,
    },
    /// The key is not the certificate's.
    #[error("the TLS key {} does not match the certificate {}", .key.display(), .cert.display())]
    KeyMismatch {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// rustls refused the certificate or the key (unsupported algorithm,
    /// malformed DER).
    #[error("the TLS certificate {} or key {} is not usable: {detail}", .cert.display(), .key.display())]
    Unusable {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
        /// rustls' reason.
        detail: String,
    },
    /// The client CA file holds no usable CA certificate.
    #[error("the client CA {} is not usable: {detail}", .path.display())]
    BadClientCa {
        /// Its path.
        path: PathBuf,
        /// The reason.
        detail: String,
    },
}

/// The paths of the TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The files the configuration names, or `None` when TLS is off.
    pub fn from_config(config: &TlsConfig) -> Option<Self> {
        Some(Self {
            cert: config.tls_cert.clone()?,
            key: config.tls_key.clone()?,
            client_ca: config.tls_client_ca.clone(),
        })
    }

    /// Reads the files' bytes.
    pub fn read(&self) -> Result<Contents, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        Ok(Contents {
            cert: read("TLS certificate", &self.cert)?,
            key: read("TLS key", &self.key)?,
            client_ca: match &self.client_ca {
                Some(path) => Some(read("client CA", path)?),
                None => None,
            },
        })
    }
}

/// The bytes of the TLS files, as read. Compared on reload to see whether
/// anything changed. Holds a private key: `Debug` prints no bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl fmt::Debug for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contents")
            .field("cert_bytes", &self.cert.len())
            .field("key", &"<redacted>")
            .field("client_ca_bytes", &self.client_ca.as_ref().map(Vec::len))
            .finish()
    }
}

/// A server configuration and what it was built from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The rustls configuration for new handshakes.
    pub config: Arc<ServerConfig>,
    /// The leaf certificate (for its expiry in the log).
    pub leaf: CertificateDer<'static>,
}

impl Contents {
    /// Builds the server configuration: the certificate chain and key, ALPN
    /// `h2`, and with a client CA a verifier that requires a client
    /// certificate chaining to it.
    pub fn server_config(&self, files: &TlsFiles) -> Result<Loaded, TlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let chain = certificates(&self.cert, "TLS certificate", &files.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| TlsError::NoPem {
            what: "TLS key",
            path: files.key.clone(),
            expected: "private key (PKCS#8, PKCS#1 or SEC1)",
            detail: pem_detail(&e),
        })?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| unusable(files, e))?;
        let builder = match (&self.client_ca, &files.client_ca) {
            (Some(pem), Some(path)) => {
                builder.with_client_cert_verifier(client_verifier(pem, path, &provider)?)
            }
            _ => builder.with_no_client_auth(),
        };
        let leaf = chain[0].clone();
        let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                }
            }
            other => unusable(files, other),
        })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Loaded {
            config: Arc::new(config),
            leaf,
        })
    }
}

/// Every certificate in a PEM file; at least one.
fn certificates(
    pem: &[u8],
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let no_pem = |detail| TlsError::NoPem {
        what,
        path: path.to_owned(),
        expected: "certificate",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_pem(pem_detail(&e)))?;
    if certs.is_empty() {
        return Err(no_pem(None));
    }
    Ok(certs)
}

/// The verifier of client certificates: they must chain to a CA in `pem`.
fn client_verifier(
    pem: &[u8],
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let bad = |detail: String| TlsError::BadClientCa {
        path: path.to_owned(),
        detail,
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem, "client CA", path)? {
        roots
            .add(cert)
            .map_err(|e| bad(format!("a certificate is not a usable CA: {e}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| bad(e.to_string()))
}

fn unusable(files: &TlsFiles, e: rustls::Error) -> TlsError {
    TlsError::Unusable {
        cert: files.cert.clone(),
        key: files.key.clone(),
        detail: e.to_string(),
    }
}

/// What is wrong with a PEM file, in fixed words: the parser's own message
/// can quote a raw line of the file, and in the key file that line is the
/// private key (a key whose line breaks were lost is one long line).
fn pem_detail(e: &rustls::pki_types::pem::Error) -> Option<String> {
    use rustls::pki_types::pem::Error;
    Some(
        match e {
            Error::NoItemsFound => return None,
            Error::MissingSectionEnd { .. } => {
                "a PEM block has no END line: were its line breaks lost?"
            }
            Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
            Error::Base64Decode(_) => "a PEM block is not valid base64",
            Error::SectionTooLarge => "a PEM block is too large",
            _ => "a malformed PEM file",
        }
        .to_owned(),
    )
}
