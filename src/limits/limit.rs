//! What a call is and the limits that can refuse it, with the words a
//! refusal carries (`ErrorInfo` reason, `QuotaFailure` subject and
//! description); none of them holds user data.

use std::time::Duration;

use super::LimitsConfig;
use crate::rpc::Operation;

/// One call to decide.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The RPC.
    pub operation: Operation,
    /// The user, as an opaque key: e.g. the pool and the token's `sub`, or a
    /// hash of the token. Hashed before any use.
    pub user: &'a str,
    /// The attribute (`email`, `phone_number`); used by the send cooldown.
    pub attribute: &'a str,
    /// The caller: its mTLS identity or its peer address. Hashed before use.
    pub caller: &'a str,
}

/// One of the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// One code per user and attribute per cooldown.
    SendCooldown,
    /// Codes per user per hour.
    UserSendQuota,
    /// Verification attempts per user per hour.
    UserVerifyQuota,
    /// Code requests per caller per minute.
    CallerRate,
    /// Calls of one RPC per second (with Redis: across all replicas).
    RpcRate(Operation),
    /// SMS codes per UTC day, the whole deployment (with Redis: across all
    /// replicas).
    SmsDaily,
    /// SMS codes per hour to the numbers of one prefix (the calling code and
    /// the next digits), the whole deployment.
    SmsPrefix,
}

impl Limit {
    /// The `ErrorInfo` reason of a refusal by this limit.
    pub fn reason(self) -> &'static str {
        match self {
            Self::SendCooldown => "SEND_COOLDOWN",
            Self::UserSendQuota => "USER_SEND_QUOTA",
            Self::UserVerifyQuota => "USER_VERIFY_QUOTA",
            Self::CallerRate => "CALLER_RATE_LIMITED",
            Self::RpcRate(_) => "RATE_LIMITED",
            Self::SmsDaily => "SMS_DAILY_LIMIT",
            Self::SmsPrefix => "SMS_PREFIX_LIMIT",
        }
    }

    /// The `QuotaFailure` subject: what is limited, without any user data.
    pub fn subject(self) -> String {
        match self {
            Self::SendCooldown => "user:attribute".to_owned(),
            Self::UserSendQuota | Self::UserVerifyQuota => "user".to_owned(),
            Self::CallerRate => "caller".to_owned(),
            Self::RpcRate(op) => format!("rpc:{}", op.as_str()),
            Self::SmsDaily => "sms:day".to_owned(),
            Self::SmsPrefix => "sms:prefix".to_owned(),
        }
    }

    /// The `QuotaFailure` description: the limit in words, from `config`.
    pub fn description(self, config: &LimitsConfig) -> String {
        let plural =
            |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        match self {
            Self::SendCooldown => format!(
                "at most 1 code per user and attribute every {}",
                seconds(config.send_cooldown)
            ),
            Self::UserSendQuota => format!(
                "at most {} per user per hour",
                plural(config.user_sends_per_hour, "code", "codes")
            ),
            Self::UserVerifyQuota => format!(
                "at most {} per user per hour",
                plural(
                    config.user_verifies_per_hour,
                    "verification attempt",
                    "verification attempts"
                )
            ),
            Self::CallerRate => format!(
                "at most {} per caller per minute",
                plural(
                    config.caller_sends_per_minute,
                    "code request",
                    "code requests"
                )
            ),
            Self::RpcRate(op) => match rpc_per_sec(config, op) {
                // Refused with the rate off: this replica's table of recent
                // users is full (see `local`).
                0 => format!(
                    "{} calls are limited to the users this replica can track",
                    op.as_str()
                ),
                n => format!(
                    "at most {} per second",
                    plural(
                        n,
                        &format!("{} call", op.as_str()),
                        &format!("{} calls", op.as_str())
                    )
                ),
            },
            Self::SmsDaily => format!(
                "at most {} per UTC day, all users together",
                plural(config.sms_per_day, "SMS code", "SMS codes")
            ),
            Self::SmsPrefix => format!(
                "at most {} per hour to the numbers of one prefix",
                plural(config.sms_prefix_per_hour, "SMS code", "SMS codes")
            ),
        }
    }
}

/// A duration in words: whole seconds as `60 s`, others as `1500 ms`.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn rpc_per_sec(config: &LimitsConfig, op: Operation) -> u32 {
    match op {
        Operation::GetUserAttributeVerificationCode => config.get_code_per_sec,
        Operation::VerifyUserAttribute => config.verify_per_sec,
        Operation::GetVerificationStatus => config.status_per_sec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_subjects_and_descriptions() {
        let op = Operation::GetUserAttributeVerificationCode;
        let config = LimitsConfig {
            caller_sends_per_minute: 10,
            ..LimitsConfig::default()
        };
        let table = [
            (
                Limit::SendCooldown,
                "SEND_COOLDOWN",
                "user:attribute",
                "at most 1 code per user and attribute every 60 s",
            ),
            (
                Limit::UserSendQuota,
                "USER_SEND_QUOTA",
                "user",
                "at most 5 codes per user per hour",
            ),
            (
                Limit::UserVerifyQuota,
                "USER_VERIFY_QUOTA",
                "user",
                "at most 15 verification attempts per user per hour",
            ),
            (
                Limit::CallerRate,
                "CALLER_RATE_LIMITED",
                "caller",
                "at most 10 code requests per caller per minute",
            ),
            (
                Limit::RpcRate(op),
                "RATE_LIMITED",
                "rpc:GetUserAttributeVerificationCode",
                "at most 25 GetUserAttributeVerificationCode calls per second",
            ),
        ];
        for (limit, reason, subject, description) in table {
            assert_eq!(limit.reason(), reason);
            assert_eq!(limit.subject(), subject);
            assert_eq!(limit.description(&config), description);
        }
        let config = LimitsConfig {
            send_cooldown: Duration::from_millis(1500),
            user_sends_per_hour: 1,
            get_code_per_sec: 0,
            ..LimitsConfig::default()
        };
        assert_eq!(
            Limit::SendCooldown.description(&config),
            "at most 1 code per user and attribute every 1500 ms"
        );
        assert_eq!(
            Limit::UserSendQuota.description(&config),
            "at most 1 code per user per hour"
        );
        assert!(Limit::RpcRate(op)
            .description(&config)
            .contains("can track"));
    }
}
