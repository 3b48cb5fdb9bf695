//! A user's verifiable attributes as Cognito's GetUser returns them: the
//! email address and the phone number, and whether each is verified. They
//! are personal data: `Debug` shows only which are present and verified,
//! and what leaves the service is masked the way Cognito masks a code's
//! destination ([`Contact::masked`]).

use std::fmt;

/// One verifiable attribute of a user.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The value (an email address, or a phone number in E.164), if any.
    value: Option<String>,
    /// `<attribute>_verified` is `"true"`.
    pub verified: bool,
}

impl Contact {
    /// A contact with `value` (absent when `None` or empty).
    pub fn new(value: Option<String>, verified: bool) -> Self {
        Self {
            value: value.filter(|v| !v.is_empty()),
            verified,
        }
    }

    /// Whether the user has a value.
    pub fn present(&self) -> bool {
        self.value.is_some()
    }

    /// The value, for the one place that needs it (the SMS guard reads the
    /// number's country and prefix).
    pub fn expose(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The value masked as Cognito masks a destination: `d***@e***` for an
    /// email address, `+` then a star per digit but the last four for a
    /// phone number (`+*******0100`); empty when absent.
    pub fn masked(&self, attribute: &str) -> String {
        let Some(value) = &self.value else {
            return String::new();
        };
        if attribute == "phone_number" {
            let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
            let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("+{}{tail}", "*".repeat(digits.len().saturating_sub(4)))
        } else {
            let (local, domain) = value.split_once('@').unwrap_or((value, ""));
            let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
            format!("{}***@{}***", first(local), first(domain))
        }
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contact")
            .field("present", &self.present())
            .field("verified", &self.verified)
            .finish()
    }
}

/// The user's email address and phone number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    /// `email` and `email_verified`.
    pub email: Contact,
    /// `phone_number` and `phone_number_verified`.
    pub phone: Contact,
}

impl Contacts {
    /// The contacts in GetUser's `UserAttributes` (`name`, `value` pairs).
    pub fn from_attributes<'a>(attributes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut values = std::collections::HashMap::new();
        for (name, value) in attributes {
            values.insert(name, value);
        }
        let contact = |name: &str, verified: &str| {
            Contact::new(
                values.get(name).map(|v| (*v).to_owned()),
                values.get(verified).is_some_and(|v| *v == "true"),
            )
        };
        Self {
            email: contact("email", "email_verified"),
            phone: contact("phone_number", "phone_number_verified"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_cognito() {
        let contacts = Contacts::from_attributes([
            ("email", "demo@example.com"),
            ("email_verified", "false"),
            ("phone_number", "+12065550100"),
            ("phone_number_verified", "true"),
        ]);
        assert_eq!(contacts.email.masked("email"), "d***@e***");
        assert_eq!(contacts.phone.masked("phone_number"), "+*******0100");
        assert!(!contacts.email.verified);
        assert!(contacts.phone.verified);
        let uk = Contact::new(Some("+442071838750".into()), false);
        assert_eq!(uk.masked("phone_number"), "+********8750");
        assert_eq!(Contact::default().masked("email"), "");
    }

    #[test]
    fn debug_shows_no_value() {
        let contacts = Contacts::from_attributes([
            ("email", "secret-person@example.com"),
            ("phone_number", "+447700900123"),
        ]);
        let shown = format!("{contacts:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("7700"), "{shown}");
        assert!(shown.contains("present: true"), "{shown}");
        // An empty value is no value.
        assert!(!Contact::new(Some(String::new()), false).present());
    }
}
