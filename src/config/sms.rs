//! `serve`'s settings of the SMS guard (`src/sms`): where codes may go by
//! text message, and how many.

use clap::{Args, ValueEnum};

use crate::sms::{CountryMode, SmsGuard};

/// What to do with a number outside `--sms-allow-country`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmsCountryMode {
    /// Refuse the send (FAILED_PRECONDITION, `SMS_COUNTRY_NOT_ALLOWED`).
    Enforce,
    /// Send it, count it (`cognito_verify_sms_country_monitored_total`) and
    /// audit it.
    Monitor,
}

/// The SMS guard, applied to code requests for `phone_number`.
#[derive(Debug, Clone, Args)]
pub struct SmsFlags {
    /// Countries SMS codes may be sent to, as ISO 3166-1 alpha-2 codes
    /// (e.g. `US`); repeatable, or comma-separated in the environment. The
    /// country is the number's, from its calling code. Unset: every country.
    #[arg(
        long = "sms-allow-country",
        env = "COGNITO_VERIFY_SMS_ALLOW_COUNTRY",
        value_name = "COUNTRY",
        value_delimiter = ','
    )]
    pub sms_allow_country: Vec<String>,

    /// Outside the allowed countries: `enforce` refuses, `monitor` sends,
    /// counts and audits.
    #[arg(long, env = "COGNITO_VERIFY_SMS_COUNTRY_MODE", value_enum, default_value_t = SmsCountryMode::Enforce)]
    pub sms_country_mode: SmsCountryMode,

    /// SMS codes per UTC day for the whole deployment (cluster-wide with
    /// Redis, per replica without); beyond it RESOURCE_EXHAUSTED,
    /// `SMS_DAILY_LIMIT`, until midnight UTC. Email is not affected. 0 = off.
    #[arg(long, env = "COGNITO_VERIFY_SMS_DAILY_LIMIT", default_value_t = 0)]
    pub sms_daily_limit: u32,

    /// SMS codes per hour to the numbers of one prefix (the calling code and
    /// the next 4 digits, e.g. `+44 7700`), cluster-wide with Redis: the
    /// pattern of SMS pumping; beyond it RESOURCE_EXHAUSTED,
    /// `SMS_PREFIX_LIMIT`. 0 = off.
    #[arg(
        long,
        env = "COGNITO_VERIFY_SMS_PREFIX_SENDS_PER_HOUR",
        default_value_t = 0
    )]
    pub sms_prefix_sends_per_hour: u32,
}

impl SmsFlags {
    /// The guard's country rule; an unknown country code is a
    /// configuration error.
    pub fn guard(&self) -> Result<SmsGuard, String> {
        SmsGuard::new(
            &self.sms_allow_country,
            match self.sms_country_mode {
                SmsCountryMode::Enforce => CountryMode::Enforce,
                SmsCountryMode::Monitor => CountryMode::Monitor,
            },
        )
    }
}
