//! Domain types: a request is parsed into these at the boundary, so code past
//! the handler never sees an unvalidated value. The constraints are Cognito's
//! own (service model `cognito-idp` 2016-04-18), checked here so that a bad
//! request is answered with a precise `BadRequest` and never reaches Cognito.
//!
//! Secrets ([`AccessToken`], [`VerificationCode`]) have a redacting `Debug` and
//! no `Display`: they cannot end up in a log line by accident.

use std::{collections::HashMap, fmt, sync::LazyLock};

use regex::Regex;

use crate::error::FieldViolation;

/// Most characters in one client-metadata key or value (Cognito's limit).
pub const CLIENT_METADATA_MAX_CHARS: usize = 131_072;
/// Most bytes of client metadata in one request, keys and values together.
/// Cognito sets no total; this bound keeps one request's memory predictable.
pub const CLIENT_METADATA_MAX_TOTAL_BYTES: usize = 524_288;
/// Most characters in an attribute name (Cognito's limit).
pub const ATTRIBUTE_NAME_MAX_CHARS: usize = 32;
/// Most characters in a verification code (Cognito's limit).
pub const CODE_MAX_CHARS: usize = 2048;

/// A user's access token. Redacted in `Debug`; no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Parses a token as Cognito's model constrains it: non-empty,
    /// `[A-Za-z0-9-_=.]+`. `field` names where it came from.
    pub fn parse(value: String, field: &'static str) -> Result<Self, FieldViolation> {
        if value.is_empty() {
            return Err(FieldViolation::new(field, "must not be empty"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.');
        if !value.chars().all(allowed) {
            return Err(FieldViolation::new(
                field,
                "must contain only the characters A-Z a-z 0-9 - _ = .",
            ));
        }
        Ok(Self(value))
    }

    /// The token, for the one place that sends it to Cognito.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// A verification code. Redacted in `Debug`; no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(String);

impl VerificationCode {
    /// Parses a code: 1 to 2048 characters, no whitespace.
    pub fn parse(value: String) -> Result<Self, FieldViolation> {
        let chars = value.chars().count();
        if chars == 0 || chars > CODE_MAX_CHARS {
            return Err(FieldViolation::new(
                "code",
                format!("must be 1 to {CODE_MAX_CHARS} characters long"),
            ));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(FieldViolation::new("code", "must not contain whitespace"));
        }
        Ok(Self(value))
    }

    /// The code, for the one place that sends it to Cognito.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(<redacted>)")
    }
}

/// The name of a user attribute, e.g. `email`. Not a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeName(String);

/// Cognito's pattern for attribute names: letters, marks, symbols, numbers,
/// punctuation, tab, newline, carriage return and space.
static ATTRIBUTE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\p{L}\p{M}\p{S}\p{N}\p{P}\t\n\r ]+$").expect("attribute name pattern compiles")
});

impl AttributeName {
    /// Parses a name: 1 to 32 characters of Cognito's attribute-name pattern.
    /// Which attributes can be verified is Cognito's decision, not ours.
    pub fn parse(value: String) -> Result<Self, FieldViolation> {
        let chars = value.chars().count();
        if chars == 0 || chars > ATTRIBUTE_NAME_MAX_CHARS {
            return Err(FieldViolation::new(
                "attribute_name",
                format!("must be 1 to {ATTRIBUTE_NAME_MAX_CHARS} characters long"),
            ));
        }
        if !ATTRIBUTE_NAME.is_match(&value) {
            return Err(FieldViolation::new(
                "attribute_name",
                "must contain only letters, marks, symbols, numbers, punctuation and spaces",
            ));
        }
        Ok(Self(value))
    }

    /// The name as Cognito expects it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Client metadata for Cognito's Lambda triggers, within Cognito's per-entry
/// limit and this service's total bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMetadata(HashMap<String, String>);

impl ClientMetadata {
    /// Checks every key and value against the limits.
    pub fn parse(map: HashMap<String, String>) -> Result<Self, FieldViolation> {
        let mut total = 0usize;
        for (key, value) in &map {
            if key.chars().count() > CLIENT_METADATA_MAX_CHARS
                || value.chars().count() > CLIENT_METADATA_MAX_CHARS
            {
                return Err(FieldViolation::new(
                    "client_metadata",
                    format!(
                        "each key and value must be at most {CLIENT_METADATA_MAX_CHARS} characters"
                    ),
                ));
            }
            total += key.len() + value.len();
        }
        if total > CLIENT_METADATA_MAX_TOTAL_BYTES {
            return Err(FieldViolation::new(
                "client_metadata",
                format!("keys and values together must be at most {CLIENT_METADATA_MAX_TOTAL_BYTES} bytes"),
            ));
        }
        Ok(Self(map))
    }

    /// The entries, or `None` when there are none (the field is then omitted).
    pub fn into_inner(self) -> Option<HashMap<String, String>> {
        (!self.0.is_empty()).then_some(self.0)
    }
}

/// A parsed GetUserAttributeVerificationCode request.
#[derive(Debug)]
pub struct SendCode {
    /// Whose attribute.
    pub token: AccessToken,
    /// Which attribute.
    pub attribute: AttributeName,
    /// Passed through to Lambda triggers.
    pub client_metadata: ClientMetadata,
    /// The caller's idempotency key, when it sent one.
    pub request_id: Option<RequestId>,
}

/// A caller-chosen idempotency key: a UUID (AIP-155), kept in its canonical
/// hyphenated lower-case form so that spellings of one UUID match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(uuid::Uuid);

impl RequestId {
    /// Parses a request id; empty means none.
    pub fn parse(value: &str) -> Result<Option<Self>, FieldViolation> {
        if value.is_empty() {
            return Ok(None);
        }
        uuid::Uuid::try_parse(value)
            .map(|id| Some(Self(id)))
            .map_err(|_| {
                FieldViolation::new(
                    "request_id",
                    "must be a UUID, e.g. 4f8e3c2a-9b1d-4e6f-8a7b-2c5d9e0f1a3b",
                )
            })
    }

    /// The canonical text.
    pub fn as_hyphenated(&self) -> uuid::fmt::Hyphenated {
        self.0.hyphenated()
    }
}

/// A parsed VerifyUserAttribute request.
#[derive(Debug)]
pub struct VerifyCode {
    /// Whose attribute.
    pub token: AccessToken,
    /// Which attribute.
    pub attribute: AttributeName,
    /// The code the user received.
    pub code: VerificationCode,
}

/// How a code was delivered (Cognito's `CodeDeliveryDetails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDelivery {
    /// Masked destination.
    pub destination: Option<String>,
    /// `EMAIL`, `SMS`, or something newer.
    pub medium: Option<DeliveryMedium>,
    /// The attribute the code is for.
    pub attribute_name: Option<String>,
}

/// What GetUserAttributeVerificationCode returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Where the code went, when Cognito says.
    pub delivery: Option<CodeDelivery>,
    /// `x-amzn-RequestId`, if sent.
    pub request_id: Option<String>,
}

/// Delivery channels Cognito reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMedium {
    /// Email.
    Email,
    /// Text message.
    Sms,
    /// A medium this build does not know.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_pattern_is_cognitos() {
        assert!(AccessToken::parse("eyJ.a-b_c=.9".into(), "access_token").is_ok());
        for bad in ["", "a b", "a+b", "a/b", "tök"] {
            let v = AccessToken::parse(bad.into(), "access_token").unwrap_err();
            assert_eq!(v.field, "access_token");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let t = AccessToken::parse("secret-token".into(), "access_token").unwrap();
        let c = VerificationCode::parse("123456".into()).unwrap();
        let dbg = format!("{t:?} {c:?}");
        assert!(
            !dbg.contains("secret-token") && !dbg.contains("123456"),
            "{dbg}"
        );
    }

    #[test]
    fn attribute_name_bounds_and_pattern() {
        assert!(AttributeName::parse("email".into()).is_ok());
        assert!(AttributeName::parse("custom:Größe ✓".into()).is_ok());
        assert!(AttributeName::parse("x".repeat(32)).is_ok());
        assert!(AttributeName::parse("x".repeat(33)).is_err());
        assert!(AttributeName::parse(String::new()).is_err());
        assert!(AttributeName::parse("a\u{0}b".into()).is_err());
    }

    #[test]
    fn code_bounds_and_whitespace() {
        assert!(VerificationCode::parse("123456".into()).is_ok());
        assert!(VerificationCode::parse("9".repeat(2048)).is_ok());
        assert!(VerificationCode::parse("9".repeat(2049)).is_err());
        assert!(VerificationCode::parse("12 34".into()).is_err());
        assert!(VerificationCode::parse(String::new()).is_err());
    }

    #[test]
    fn client_metadata_limits() {
        let ok = HashMap::from([("k".to_owned(), "v".repeat(CLIENT_METADATA_MAX_CHARS))]);
        assert!(ClientMetadata::parse(ok).is_ok());
        let long = HashMap::from([("k".to_owned(), "v".repeat(CLIENT_METADATA_MAX_CHARS + 1))]);
        assert!(ClientMetadata::parse(long).is_err());
        let many: HashMap<_, _> = (0..5)
            .map(|i| (i.to_string(), "v".repeat(CLIENT_METADATA_MAX_CHARS)))
            .collect();
        assert!(ClientMetadata::parse(many).is_err());
        assert_eq!(
            ClientMetadata::parse(HashMap::new()).unwrap().into_inner(),
            None
        );
    }
}
