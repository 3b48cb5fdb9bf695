//! What stands between a parsed request and Cognito, in order:
//!
//! 1. the local token check (`auth`): a bad token costs no Cognito call;
//! 2. for a send with a `request_id`, the idempotency record
//!    (`idempotency`): a repeat returns the first answer, before any limit;
//! 3. the limits (`limits`): per user, per caller, per RPC, in one decision;
//!    for a code by SMS in two: the caller's and the RPC's rates, then (the
//!    number asked of Cognito, its country checked: `sms`) the user's
//!    limits with the SMS guard's daily and prefix limits.
//!
//! Keys: the user is the pool and `sub` only when the token's signature was
//! verified; otherwise a hash of the token itself, so that a forged token
//! cannot use up another user's limits. The caller is its mTLS identity, else
//! its peer address.

use std::time::Duration;

use aws_lc_rs::digest;
use tokio::time::Instant;

use crate::{
    auth::{CheckError, CheckedToken, Signature, TokenChecker},
    config::ServeConfig,
    domain::{AccessToken, AttributeName, RequestId},
    error::{Error, ErrorKind},
    idempotency::{self, Begin, Idempotency},
    limits::{
        standing::{Asked, Standing},
        Call, Limit, Limits, Refusal,
    },
    rpc::Operation,
    sms::{CountryVerdict, NumberFacts, SmsGuard},
    telemetry::metrics::metrics,
    transport::Peer,
};

/// Extra life of an idempotency marker beyond the longest Cognito call, so
/// that it outlives the call it stands for.
const MARKER_MARGIN: Duration = Duration::from_secs(5);

/// The checks, built once at start-up; cheap to clone.
#[derive(Clone)]
pub struct Checks {
    tokens: TokenChecker,
    limits: Limits,
    sms: SmsGuard,
    idempotency: Idempotency,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks").finish_non_exhaustive()
    }
}

/// A checked caller: its token and the keys its limits are counted under.
pub struct Admitted {
    /// The token's claims, checked.
    pub token: CheckedToken,
    /// The key of the user's limits and idempotency records.
    pub user: String,
}

impl Checks {
    /// Builds the checks from the configuration; an error is a configuration
    /// error (one line, exit 64).
    pub async fn from_config(config: &ServeConfig) -> Result<Self, String> {
        config.token.validate()?;
        let token_config = config
            .token
            .check_config(config.cognito_endpoint.as_deref(), config.region.as_deref());
        token_config.validate()?;
        let tokens = TokenChecker::new(token_config)?;
        let mut limits_config = config.limits.limits_config()?;
        limits_config.sms_per_day = config.sms.sms_daily_limit;
        limits_config.sms_prefix_per_hour = config.sms.sms_prefix_sends_per_hour;
        let sms = config.sms.guard()?;
        let remote = match &limits_config.redis {
            Some(redis) => Some(idempotency::remote::Remote::new(
                redis,
                config.limits.idempotency_window(),
                config.call_timeout() + MARKER_MARGIN,
            )?),
            None => None,
        };
        let limits = Limits::new(limits_config).await?;
        Ok(Self {
            tokens,
            limits,
            sms,
            idempotency: Idempotency::new(config.limits.idempotency_window(), remote),
        })
    }

    /// The limits' state (for their metrics).
    pub fn limit_state(&self) -> &Limits {
        &self.limits
    }

    /// Checks the token, locally, waiting for its pool's keys (when they
    /// must be fetched) for `wait` at most.
    pub async fn token(
        &self,
        op: Operation,
        token: &AccessToken,
        wait: Option<Duration>,
    ) -> Result<Admitted, Error> {
        let checked = self.tokens.check(token, wait).await.map_err(|e| {
            let kind = match e {
                CheckError::Rejected(r) => ErrorKind::Token(r),
                CheckError::KeysUnavailable { retry_after } => {
                    ErrorKind::KeysUnavailable { retry_after }
                }
            };
            Error::new(op, kind)
        })?;
        let user = match checked.signature {
            Signature::Verified => format!("{}:{}", checked.pool_id, checked.sub),
            Signature::Unverified => format!("token:{}", hex(&sha256(token.expose().as_bytes()))),
        };
        Ok(Admitted {
            token: checked,
            user,
        })
    }

    /// Looks up a send's `request_id`, waiting for a duplicate in progress
    /// until `deadline`.
    pub async fn idempotent(
        &self,
        who: &Admitted,
        attribute: &AttributeName,
        request_id: RequestId,
        deadline: Instant,
    ) -> Result<Begin, Error> {
        const OP: Operation = Operation::GetUserAttributeVerificationCode;
        let key = hex(&sha256(
            format!(
                "{}\n{}\n{}",
                who.user,
                attribute.as_str(),
                request_id.as_hyphenated()
            )
            .as_bytes(),
        ));
        self.idempotency
            .begin(&key, deadline)
            .await
            .map_err(|refusal| match refusal {
                idempotency::Refusal::InProgress => Error::new(OP, ErrorKind::RequestInProgress),
                idempotency::Refusal::Unavailable => Error::new(OP, ErrorKind::LimitsUnavailable),
            })
    }

    /// Decides the limits of a call by `who`, from `caller`, for
    /// `attribute` (empty for the status RPC, which has none).
    pub async fn admit(
        &self,
        op: Operation,
        who: &Admitted,
        attribute: &str,
        caller: &str,
    ) -> Result<(), Error> {
        let call = call_of(op, who, attribute, caller);
        self.limits
            .check(&call)
            .await
            .map_err(|refusal| self.refused(op, refusal))
    }

    /// A code by SMS, first step: the caller's and the RPC's rates only
    /// (they bound the GetUser calls that find the number); the user's
    /// limits wait for [`Checks::admit_sms`].
    pub async fn admit_rates(
        &self,
        op: Operation,
        who: &Admitted,
        attribute: &str,
        caller: &str,
    ) -> Result<(), Error> {
        let call = call_of(op, who, attribute, caller);
        self.limits
            .check_rates(&call)
            .await
            .map_err(|refusal| self.refused(op, refusal))
    }

    /// The SMS guard's country rule for the number `facts` describes:
    /// `Ok(true)` when it is outside the allowed countries and goes anyway
    /// (`monitor`); refusals are counted by country.
    pub fn sms_country(&self, op: Operation, facts: &NumberFacts) -> Result<bool, Error> {
        match self.sms.country(facts.country.as_deref()) {
            CountryVerdict::Allowed => Ok(false),
            CountryVerdict::Monitored => Ok(true),
            CountryVerdict::Refused => {
                let country = facts.country_label();
                metrics().sms_refused(country, "SMS_COUNTRY_NOT_ALLOWED");
                Err(Error::new(
                    op,
                    ErrorKind::SmsCountryNotAllowed {
                        country: country.to_owned(),
                    },
                ))
            }
        }
    }

    /// A code by SMS, second step, once the number is known: the user's
    /// limits and the SMS guard's (the number's prefix per hour, the day's
    /// codes) in one decision, so that a refusal by one spends nothing of
    /// the others. `number` is `None` when the user has no number (Cognito
    /// then refuses the send): the user's limits alone.
    pub async fn admit_sms(
        &self,
        op: Operation,
        who: &Admitted,
        attribute: &str,
        caller: &str,
        number: Option<&NumberFacts>,
    ) -> Result<(), Error> {
        let call = call_of(op, who, attribute, caller);
        // A number without a prefix (it does not parse) shares one key.
        let prefix = number.map(|n| n.prefix.as_deref().unwrap_or("unparsed"));
        self.limits
            .check_user_and_sms(&call, prefix)
            .await
            .map_err(|refusal| {
                if let (Refusal::Limited { limit, .. }, Some(n)) = (&refusal, number) {
                    if matches!(limit, Limit::SmsDaily | Limit::SmsPrefix) {
                        metrics().sms_refused(n.country_label(), limit.reason());
                    }
                }
                self.refused(op, refusal)
            })
    }

    /// Whether the SMS guard would refuse a number of `facts`' country.
    pub fn sms_country_refused(&self, facts: &NumberFacts) -> bool {
        self.sms.country(facts.country.as_deref()) == CountryVerdict::Refused
    }

    /// Where `who` stands for `asked`, consuming nothing.
    pub async fn standing(
        &self,
        op: Operation,
        who: &Admitted,
        asked: &[Asked<'_>],
    ) -> Result<Standing, Error> {
        self.limits
            .standing(&who.user, asked)
            .await
            .map_err(|refusal| self.refused(op, refusal))
    }

    fn refused(&self, op: Operation, refusal: Refusal) -> Error {
        let kind = match refusal {
            Refusal::Limited { limit, wait } => ErrorKind::Limited {
                limit,
                wait,
                description: limit.description(self.limits.config()),
            },
            Refusal::Unavailable => ErrorKind::LimitsUnavailable,
        };
        Error::new(op, kind)
    }
}

/// The call the limits decide: `who` calling `op` for `attribute`, from
/// `caller`.
fn call_of<'a>(op: Operation, who: &'a Admitted, attribute: &'a str, caller: &'a str) -> Call<'a> {
    Call {
        operation: op,
        user: &who.user,
        attribute,
        caller,
    }
}

/// The caller of a request: its mTLS identity, else its peer address.
pub fn caller_of(extensions: &http::Extensions) -> String {
    match extensions.get::<Peer>() {
        Some(peer) => match peer.identity() {
            Some(identity) => format!("id:{identity}"),
            None => format!("ip:{}", peer.remote_addr().ip()),
        },
        None => "unknown".to_owned(),
    }
}

fn sha256(bytes: &[u8]) -> digest::Digest {
    digest::digest(&digest::SHA256, bytes)
}

/// The first 16 bytes, in hex: short keys, still without practical
/// collisions.
fn hex(digest: &digest::Digest) -> String {
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
