//! The caller identity of a client certificate: the first URI SAN (a SPIFFE
//! ID such as `spiffe://example.org/ns/shop/sa/checkout`), else the first DNS
//! SAN, else the subject's common name. rustls has verified the certificate
//! before this runs; this only reads names out of it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use x509_parser::{extensions::GeneralName, parse_x509_certificate};

/// Most characters of an identity we record; a longer one is refused.
const MAX_IDENTITY_CHARS: usize = 512;

/// The caller identity of `cert`, or `None` when it names nothing usable.
/// Names with control characters are skipped: they would forge log lines.
pub fn caller_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = parse_x509_certificate(cert.as_ref()).ok()?;
    let usable = |name: &str| {
        !name.is_empty()
            && name.chars().count() <= MAX_IDENTITY_CHARS
            && !name.chars().any(char::is_control)
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let names = &san.value.general_names;
        let uri = names.iter().find_map(|n| match n {
            GeneralName::URI(uri) if usable(uri) => Some(*uri),
            _ => None,
        });
        let dns = || {
            names.iter().find_map(|n| match n {
                GeneralName::DNSName(dns) if usable(dns) => Some(*dns),
                _ => None,
            })
        };
        if let Some(name) = uri.or_else(dns) {
            return Some(name.to_owned());
        }
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok().filter(|cn| usable(cn)))
        .map(str::to_owned);
    cn
}

/// When `cert` stops being valid, if it can be read.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, cert) = parse_x509_certificate(cert.as_ref()).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}
