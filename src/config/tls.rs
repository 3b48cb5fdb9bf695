//! `serve`'s TLS settings: certificate, key, client CA (mTLS), the caller
//! allowlist and how often the files are read again.

use std::path::PathBuf;

use clap::Args;

/// TLS and mTLS on the gRPC port. The files are PEM and are read again every
/// `--tls-reload-interval-secs`: new handshakes use new contents.
#[derive(Debug, Clone, Args)]
pub struct TlsConfig {
    /// Certificate chain (PEM, leaf first) of the gRPC port; turns TLS on.
    /// Requires `--tls-key`.
    #[arg(long, env = "COGNITO_VERIFY_TLS_CERT", requires = "tls_key", value_parser = non_empty_path)]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "COGNITO_VERIFY_TLS_KEY", requires = "tls_cert", value_parser = non_empty_path)]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (PEM): clients must present a certificate that chains
    /// to one of them (mTLS). Requires `--tls-cert`.
    #[arg(long, env = "COGNITO_VERIFY_TLS_CLIENT_CA", requires = "tls_cert", value_parser = non_empty_path)]
    pub tls_client_ca: Option<PathBuf>,

    /// Only these callers (exact client-certificate identity: URI SAN such as
    /// a SPIFFE ID, else the first DNS SAN, else the subject CN) may call the
    /// verification RPCs; repeatable, or comma-separated in the environment.
    /// Empty: any caller with a valid certificate. Requires `--tls-client-ca`.
    #[arg(
        long = "allow-caller",
        env = "COGNITO_VERIFY_ALLOW_CALLER",
        value_name = "ID",
        value_delimiter = ','
    )]
    pub allow_callers: Vec<String>,

    /// How often the TLS files are checked for changes, in seconds.
    #[arg(long, env = "COGNITO_VERIFY_TLS_RELOAD_INTERVAL_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub tls_reload_interval_secs: u64,
}

impl TlsConfig {
    /// The caller allowlist without empty entries (an empty
    /// `COGNITO_VERIFY_ALLOW_CALLER` means no list, not a list of "").
    pub fn allowed_callers(&self) -> Vec<String> {
        self.allow_callers
            .iter()
            .map(|id| id.trim())
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Checks what clap cannot: an allowlist needs client certificates and
    /// names someone; the paths are paths, not PEM content pasted into a
    /// variable (which would otherwise be echoed in the error about it).
    pub fn validate(&self) -> Result<(), String> {
        let paths = [
            ("--tls-cert", &self.tls_cert),
            ("--tls-key", &self.tls_key),
            ("--tls-client-ca", &self.tls_client_ca),
        ];
        for (flag, path) in paths {
            let Some(path) = path else { continue };
            let text = path.to_string_lossy();
            if text.contains('\n') || text.contains("-----BEGIN") {
                return Err(format!(
                    "{flag} holds PEM content, not a path: give the path of the file"
                ));
            }
        }
        // An empty variable means no list; " , " is a mistake, not "anyone".
        let unset = self.allow_callers.is_empty() || self.allow_callers == [""];
        if !unset && self.allowed_callers().is_empty() {
            return Err("--allow-caller lists no caller (only empty entries)".to_owned());
        }
        if !self.allowed_callers().is_empty() && self.tls_client_ca.is_none() {
            return Err("--allow-caller needs --tls-client-ca: callers are identified by their client certificates".to_owned());
        }
        Ok(())
    }
}

/// A path that is not empty.
fn non_empty_path(value: &str) -> Result<PathBuf, String> {
    if value.trim().is_empty() {
        return Err("a path is required (unset the variable to leave this off)".to_owned());
    }
    Ok(PathBuf::from(value))
}
