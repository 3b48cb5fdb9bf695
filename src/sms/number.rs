//! A phone number as the SMS guard sees it: its country and its prefix,
//! never the number itself. The country comes from libphonenumber's
//! metadata (the `phonenumber` crate): the calling code and, where several
//! countries share one (`+1`, `+7`, `+44`...), the leading digits.

use std::fmt;

/// How many digits of the national number, after the calling code, make a
/// number's prefix for `--sms-prefix-sends-per-hour`: `+44 7700 900123` is
/// in the prefix `44 7700`. Four digits name a range of at most a million
/// numbers in most numbering plans (an area code and an exchange digit in
/// North America), the granularity at which premium ranges are sold.
pub const PREFIX_DIGITS: usize = 4;

/// What the guard knows of a number. `Debug` shows only the country: the
/// prefix is part of the number, and the number is personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct NumberFacts {
    /// ISO 3166-1 alpha-2 (upper case), when the number has a country.
    pub country: Option<String>,
    /// The calling code and the first [`PREFIX_DIGITS`] digits of the
    /// national number, e.g. `44:7700`; `None` when the number does not
    /// parse.
    pub prefix: Option<String>,
}

impl fmt::Debug for NumberFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NumberFacts")
            .field("country", &self.country)
            .field("prefix", &self.prefix.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl NumberFacts {
    /// The facts of `e164` (Cognito stores `phone_number` as `+` and up to
    /// 15 digits); a number that does not parse has neither.
    pub fn of(e164: &str) -> Self {
        let Ok(number) = phonenumber::parse(None, e164) else {
            return Self {
                country: None,
                prefix: None,
            };
        };
        let national = number.national();
        let digits = format!(
            "{}{}",
            "0".repeat(usize::from(national.zeros())),
            national.value()
        );
        let head: String = digits.chars().take(PREFIX_DIGITS).collect();
        let code = number.code().value();
        let country = number
            .country()
            .id()
            .map(|id| id.as_ref().to_owned())
            .or_else(|| main_country(code));
        Self {
            country,
            prefix: Some(format!("{code}:{head}")),
        }
    }

    /// The country as a metric label and audit field: the code, or
    /// `unknown`.
    pub fn country_label(&self) -> &str {
        self.country.as_deref().unwrap_or("unknown")
    }
}

/// The country a calling code belongs to when the number's digits match
/// no region's plan (a number not in service, a reserved range): the code's
/// only country, or its main one (`+44`: GB, `+1`: US). Non-geographic codes
/// (`+800`, `+882`...) have none.
fn main_country(code: u16) -> Option<String> {
    let regions = phonenumber::metadata::DATABASE.by_code(&code)?;
    let main = match regions.as_slice() {
        [only] => only,
        several => several.iter().find(|m| m.is_main_country_for_code())?,
    };
    let id = main.id();
    is_known_country(id).then(|| id.to_owned())
}

/// Whether `code` is an ISO 3166-1 alpha-2 code that libphonenumber knows
/// (upper case).
pub fn is_known_country(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && code.parse::<phonenumber::country::Id>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_from_calling_codes_and_leading_digits() {
        let cases = [
            ("+12065550100", Some("US"), "1:2065"),
            ("+14165550123", Some("CA"), "1:4165"),
            ("+442079460958", Some("GB"), "44:2079"),
            ("+447700900123", Some("GB"), "44:7700"),
            ("+33612345678", Some("FR"), "33:6123"),
            ("+4915123456789", Some("DE"), "49:1512"),
            ("+74951234567", Some("RU"), "7:4951"),
            ("+77012345678", Some("KZ"), "7:7012"),
        ];
        for (number, country, prefix) in cases {
            let facts = NumberFacts::of(number);
            assert_eq!(facts.country.as_deref(), country, "{number}");
            assert_eq!(facts.prefix.as_deref(), Some(prefix), "{number}");
        }
        // Digits in no region's plan: the calling code's main country.
        assert_eq!(
            NumberFacts::of("+15555550100").country.as_deref(),
            Some("US")
        );
        // A non-geographic code has no country.
        assert_eq!(NumberFacts::of("+80012345678").country, None);
        let junk = NumberFacts::of("not a number");
        assert_eq!((junk.country, junk.prefix), (None, None));
        assert_eq!(NumberFacts::of("junk").country_label(), "unknown");
    }

    #[test]
    fn debug_shows_the_country_only() {
        let shown = format!("{:?}", NumberFacts::of("+447700900123"));
        assert!(shown.contains("GB"), "{shown}");
        assert!(!shown.contains("7700"), "{shown}");
    }

    #[test]
    fn known_countries() {
        assert!(is_known_country("US"));
        assert!(is_known_country("GB"));
        assert!(!is_known_country("gb"));
        assert!(!is_known_country("UK"));
        assert!(!is_known_country("USA"));
    }
}
