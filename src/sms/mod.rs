//! The SMS guard: what stands between a code request for `phone_number`
//! and the text message Cognito would send, against SMS pumping (fraudsters
//! requesting codes to premium-rate numbers they are paid for). It needs the
//! number, which the request does not carry: the service asks Cognito's
//! GetUser with the user's token just before the send.
//!
//! In order, each refusal costing no send:
//! 1. the country of the number ([`number`]) against `--sms-allow-country`:
//!    outside it, `enforce` refuses (FAILED_PRECONDITION,
//!    `SMS_COUNTRY_NOT_ALLOWED`) and `monitor` sends and counts;
//! 2. the deployment's SMS codes per UTC day (`--sms-daily-limit`) and the
//!    codes per number prefix per hour (`--sms-prefix-sends-per-hour`),
//!    decided together by the limits ([`crate::limits::Limits::check_sms`]),
//!    cluster-wide with Redis.
//!
//! The number never leaves the guard: metrics, logs and the audit trail see
//! its country, the limits a hash of its prefix.

pub mod number;

use std::collections::BTreeSet;

pub use number::NumberFacts;

/// What `--sms-country-mode` does with a number outside the allow list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountryMode {
    /// Refuse it.
    #[default]
    Enforce,
    /// Send it, and count it.
    Monitor,
}

/// The guard's country rule.
#[derive(Debug, Clone, Default)]
pub struct SmsGuard {
    /// The countries codes may go to; empty: every country.
    allowed: BTreeSet<String>,
    mode: CountryMode,
}

/// The country rule's verdict on one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountryVerdict {
    /// In the allow list, or there is none.
    Allowed,
    /// Outside it, sent anyway (`monitor`).
    Monitored,
    /// Outside it: refused (`enforce`). A number without a country is
    /// outside every list.
    Refused,
}

impl SmsGuard {
    /// A guard allowing `countries` (ISO 3166-1 alpha-2, any case; empty:
    /// every country) in `mode`. An unknown code is a configuration error.
    pub fn new(countries: &[String], mode: CountryMode) -> Result<Self, String> {
        let mut allowed = BTreeSet::new();
        for code in countries.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            let upper = code.to_ascii_uppercase();
            if !number::is_known_country(&upper) {
                return Err(format!(
                    "--sms-allow-country: {code:?} is not an ISO 3166-1 alpha-2 country code \
                     (e.g. US, GB, DE)"
                ));
            }
            allowed.insert(upper);
        }
        Ok(Self { allowed, mode })
    }

    /// The verdict on a number of `country`.
    pub fn country(&self, country: Option<&str>) -> CountryVerdict {
        if self.allowed.is_empty() || country.is_some_and(|c| self.allowed.contains(c)) {
            return CountryVerdict::Allowed;
        }
        match self.mode {
            CountryMode::Enforce => CountryVerdict::Refused,
            CountryMode::Monitor => CountryVerdict::Monitored,
        }
    }

    /// The allowed countries (empty: all).
    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(countries: &[&str], mode: CountryMode) -> SmsGuard {
        let countries: Vec<String> = countries.iter().map(|c| (*c).to_owned()).collect();
        SmsGuard::new(&countries, mode).unwrap()
    }

    #[test]
    fn the_country_rule() {
        let open = guard(&[], CountryMode::Enforce);
        assert_eq!(open.country(Some("FR")), CountryVerdict::Allowed);
        assert_eq!(open.country(None), CountryVerdict::Allowed);
        let enforce = guard(&["us", " GB "], CountryMode::Enforce);
        assert_eq!(enforce.country(Some("US")), CountryVerdict::Allowed);
        assert_eq!(enforce.country(Some("GB")), CountryVerdict::Allowed);
        assert_eq!(enforce.country(Some("FR")), CountryVerdict::Refused);
        assert_eq!(enforce.country(None), CountryVerdict::Refused);
        let monitor = guard(&["US"], CountryMode::Monitor);
        assert_eq!(monitor.country(Some("FR")), CountryVerdict::Monitored);
        assert_eq!(monitor.country(Some("US")), CountryVerdict::Allowed);
    }

    #[test]
    fn unknown_codes_are_configuration_errors() {
        let err = SmsGuard::new(&["UK".to_owned()], CountryMode::Enforce).unwrap_err();
        assert!(err.contains("\"UK\""), "{err}");
        assert!(SmsGuard::new(&["USA".to_owned()], CountryMode::Enforce).is_err());
    }
}
