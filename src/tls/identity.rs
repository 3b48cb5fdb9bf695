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
/// When the certificate has a subjectAltName extension, only its URI and DNS
/// names count (RFC 6125: the CN is then ignored; it is often chosen by the
/// requester, while the SANs are what the issuer attests). Names with
/// control characters are skipped: they would forge log lines.
pub fn caller_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = parse_x509_certificate(cert.as_ref()).ok()?;
    let usable = |name: &str| {
        !name.is_empty()
            && name.chars().count() <= MAX_IDENTITY_CHARS
            && !name.chars().any(char::is_control)
    };
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
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
            uri.or_else(dns).map(str::to_owned)
        }
        Ok(None) => {
            let cn = cert
                .subject()
                .iter_common_name()
                .find_map(|cn| cn.as_str().ok().filter(|cn| usable(cn)))
                .map(str::to_owned);
            cn
        }
        // A SAN extension that does not parse: trust no name in it.
        Err(_) => None,
    }
}

/// When `cert` stops being valid, if it can be read.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, cert) = parse_x509_certificate(cert.as_ref()).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn cert(sans: Vec<SanType>, cn: Option<&str>) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .clone()
    }

    fn uri(v: &str) -> SanType {
        SanType::URI(v.try_into().unwrap())
    }

    fn dns(v: &str) -> SanType {
        SanType::DnsName(v.try_into().unwrap())
    }

    #[test]
    fn uri_then_dns_then_cn() {
        let all = cert(vec![dns("a.example"), uri("spiffe://t/x")], Some("cn"));
        assert_eq!(caller_identity(&all).as_deref(), Some("spiffe://t/x"));
        let dns_only = cert(vec![dns("a.example")], Some("cn"));
        assert_eq!(caller_identity(&dns_only).as_deref(), Some("a.example"));
        let cn_only = cert(vec![], Some("cn-client"));
        assert_eq!(caller_identity(&cn_only).as_deref(), Some("cn-client"));
    }

    #[test]
    fn with_sans_the_cn_is_never_the_identity() {
        let ip_only = cert(vec![SanType::IpAddress([10, 0, 0, 1].into())], Some("cn"));
        assert_eq!(caller_identity(&ip_only), None);
        let forged = cert(vec![uri("spiffe://t/x\nfake")], Some("cn"));
        assert_eq!(caller_identity(&forged), None);
        let skipped = cert(vec![uri("spiffe://t/x\u{7}"), dns("b.example")], None);
        assert_eq!(caller_identity(&skipped).as_deref(), Some("b.example"));
        assert_eq!(caller_identity(&cert(vec![], None)), None);
    }
}
