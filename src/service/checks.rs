//! What stands between a parsed request and Cognito, in order:
//!
//! 1. the local token check (`auth`): a bad token costs no Cognito call;
//! 2. for a send with a `request_id`, the idempotency record
//!    (`idempotency`): a repeat returns the first answer, before any limit;
//! 3. the limits (`limits`): per user, per caller, per RPC, in one decision;
//! 4. for a code by SMS, once the number is known, the SMS guard (`sms`):
//!    its country, then its daily and prefix limits.
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
        Call, Limits, Refusal,
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
        let call = Call {
            operation: op,
            user: &who.user,
            attribute,
            caller,
        };
        self.limits
            .check(&call)
            .await
            .map_err(|refusal| self.refused(op, refusal))
    }

    /// The SMS guard, for a code to the number `facts` describes: the
    /// country rule, then the daily and prefix limits (consumed when the
    /// code may go). Refusals are counted by country and reason.
    pub async fn sms(&self, op: Operation, facts: &NumberFacts) -> Result<SmsPass, Error> {
        let country = facts.country_label();
        let monitored = match self.sms.country(facts.country.as_deref()) {
            CountryVerdict::Allowed => false,
            CountryVerdict::Monitored => true,
            CountryVerdict::Refused => {
                metrics().sms_refused(country, "SMS_COUNTRY_NOT_ALLOWED");
                return Err(Error::new(
                    op,
                    ErrorKind::SmsCountryNotAllowed {
                        country: country.to_owned(),
                    },
                ));
            }
        };
        // A number without a prefix (it does not parse) shares one key.
        let prefix = facts.prefix.as_deref().unwrap_or("unparsed");
        self.limits.check_sms(prefix).await.map_err(|refusal| {
            if let Refusal::Limited { limit, .. } = refusal {
                metrics().sms_refused(country, limit.reason());
            }
            self.refused(op, refusal)
        })?;
        Ok(SmsPass { monitored })
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

/// A code the SMS guard lets go.
#[derive(Debug, Clone, Copy)]
pub struct SmsPass {
    /// Outside the allowed countries, sent because the mode is `monitor`.
    pub monitored: bool,
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
