//! Which limits apply to a call, under which keys, at which rates: the
//! table of docs/operations.md, "The limits", as code. User and caller
//! keys are hashed (SHA-256, truncated) before they reach a map,
//! Redis or a message, so no user data leaves this module and every key has
//! a bounded length.

use std::time::Duration;

use aws_lc_rs::digest;

use super::{gcra::Rate, Call, Limit, LimitsConfig};
use crate::rpc::Operation;

/// The prefix of every Redis key of these limits.
pub(crate) const KEY_PREFIX: &str = "cognito-verify:limits:";

/// A limit's key, for the local map and for Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// 64 bits of the hash.
    pub local: u64,
    /// `cognito-verify:limits:<kind>:<128 bits of the hash, hex>`.
    pub redis: String,
}

impl Key {
    /// The key of `kind` for `parts`: SHA-256 over the kind and the parts,
    /// each length-prefixed, so no two different inputs share an encoding.
    pub fn new(kind: &str, parts: &[&str]) -> Self {
        let mut hash = digest::Context::new(&digest::SHA256);
        for field in std::iter::once(kind).chain(parts.iter().copied()) {
            hash.update(&(field.len() as u64).to_be_bytes());
            hash.update(field.as_bytes());
        }
        let hash = hash.finish();
        let bytes = hash.as_ref();
        let mut local = [0; 8];
        local.copy_from_slice(&bytes[..8]);
        let mut redis = format!("{KEY_PREFIX}{kind}:");
        for byte in &bytes[..16] {
            redis.push_str(&format!("{byte:02x}"));
        }
        Self {
            local: u64::from_be_bytes(local),
            redis,
        }
    }

    /// An RPC's key: its name is no user data, so Redis shows it as is.
    fn rpc(op: Operation) -> Self {
        Self {
            redis: format!("{KEY_PREFIX}rpc:{}", op.as_str()),
            ..Self::new("rpc", &[op.as_str()])
        }
    }
}

/// A limit that applies to a call: what it is, its key and its rate.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub limit: Limit,
    pub key: Key,
    pub rate: Rate,
}

/// The rates of a configuration (`None` where a limit is off) and the RPCs'
/// keys, computed once.
#[derive(Debug)]
pub(crate) struct Rates {
    cooldown: Option<Rate>,
    user_sends: Option<Rate>,
    user_verifies: Option<Rate>,
    caller_sends: Option<Rate>,
    get_code: Option<(Rate, Key)>,
    verify: Option<(Rate, Key)>,
    status: Option<(Rate, Key)>,
    sms_prefix: Option<Rate>,
}

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);

impl Rates {
    pub fn new(config: &LimitsConfig) -> Self {
        let rpc = |n, op| Rate::per(n, SECOND).map(|rate| (rate, Key::rpc(op)));
        Self {
            cooldown: Rate::per(1, config.send_cooldown),
            user_sends: Rate::per(config.user_sends_per_hour, HOUR),
            user_verifies: Rate::per(config.user_verifies_per_hour, HOUR),
            caller_sends: Rate::per(config.caller_sends_per_minute, MINUTE),
            get_code: rpc(
                config.get_code_per_sec,
                Operation::GetUserAttributeVerificationCode,
            ),
            verify: rpc(config.verify_per_sec, Operation::VerifyUserAttribute),
            status: rpc(config.status_per_sec, Operation::GetVerificationStatus),
            sms_prefix: Rate::per(config.sms_prefix_per_hour, HOUR),
        }
    }

    /// The rates of `call`'s caller and RPC (of [`Rates::rules`]).
    pub fn rate_rules(&self, call: &Call<'_>) -> Vec<Rule> {
        let mut rules = self.rules(call);
        rules.retain(|r| is_rate(r.limit));
        rules
    }

    /// The user's limits of `call` (of [`Rates::rules`]): its cooldown and
    /// hourly quotas.
    pub fn user_rules(&self, call: &Call<'_>) -> Vec<Rule> {
        let mut rules = self.rules(call);
        rules.retain(|r| !is_rate(r.limit));
        rules
    }

    /// The SMS guard's keyed limit of a send to a number with `prefix`
    /// (empty when that limit is off).
    pub fn sms_rules(&self, prefix: &str) -> Vec<Rule> {
        self.sms_prefix
            .map(|rate| Rule {
                limit: Limit::SmsPrefix,
                key: Key::new("sms-prefix", &[prefix]),
                rate,
            })
            .into_iter()
            .collect()
    }

    /// The user's limits that the status RPC reads (each only when on): the
    /// send cooldown of each of `attributes`, the hourly sends, the hourly
    /// verification attempts, and the SMS prefix's limit for `sms_prefix`.
    pub fn standing_rules(
        &self,
        user: &str,
        attributes: &[&str],
        sms_prefix: Option<&str>,
    ) -> Vec<(Limit, Option<Rule>)> {
        let rule = |limit, rate: Option<Rate>, key: Key| {
            (limit, rate.map(|rate| Rule { limit, key, rate }))
        };
        let mut rules: Vec<_> = attributes
            .iter()
            .map(|attribute| {
                rule(
                    Limit::SendCooldown,
                    self.cooldown,
                    Key::new("cooldown", &[user, attribute]),
                )
            })
            .collect();
        rules.push(rule(
            Limit::UserSendQuota,
            self.user_sends,
            Key::new("user-sends", &[user]),
        ));
        rules.push(rule(
            Limit::UserVerifyQuota,
            self.user_verifies,
            Key::new("user-verifies", &[user]),
        ));
        if let Some(prefix) = sms_prefix {
            rules.push(rule(
                Limit::SmsPrefix,
                self.sms_prefix,
                Key::new("sms-prefix", &[prefix]),
            ));
        }
        rules
    }

    /// The limits that apply to `call`, in a fixed order.
    pub fn rules(&self, call: &Call<'_>) -> Vec<Rule> {
        let mut rules = Vec::with_capacity(4);
        let mut add = |limit, rate: Option<Rate>, key: &dyn Fn() -> Key| {
            if let Some(rate) = rate {
                rules.push(Rule {
                    limit,
                    key: key(),
                    rate,
                });
            }
        };
        match call.operation {
            op @ Operation::GetUserAttributeVerificationCode => {
                add(Limit::SendCooldown, self.cooldown, &|| {
                    Key::new("cooldown", &[call.user, call.attribute])
                });
                add(Limit::UserSendQuota, self.user_sends, &|| {
                    Key::new("user-sends", &[call.user])
                });
                add(Limit::CallerRate, self.caller_sends, &|| {
                    Key::new("caller-sends", &[call.caller])
                });
                if let Some((rate, key)) = &self.get_code {
                    add(Limit::RpcRate(op), Some(*rate), &|| key.clone());
                }
            }
            op @ Operation::VerifyUserAttribute => {
                add(Limit::UserVerifyQuota, self.user_verifies, &|| {
                    Key::new("user-verifies", &[call.user])
                });
                if let Some((rate, key)) = &self.verify {
                    add(Limit::RpcRate(op), Some(*rate), &|| key.clone());
                }
            }
            op @ Operation::GetVerificationStatus => {
                if let Some((rate, key)) = &self.status {
                    add(Limit::RpcRate(op), Some(*rate), &|| key.clone());
                }
            }
        }
        rules
    }

    /// Each keyed limit's RPC rate per second (when it has one) and the
    /// lifetime of its entries, µs: what sizes the local store
    /// (`local::capacity_for`).
    pub fn keyed_lifetimes(&self) -> impl Iterator<Item = (Option<u32>, i64)> {
        let get_code = self.get_code.as_ref().map(|(rate, _)| per_sec(rate));
        let verify = self.verify.as_ref().map(|(rate, _)| per_sec(rate));
        let keyed = [
            (get_code, self.cooldown),
            (get_code, self.user_sends),
            (get_code, self.caller_sends),
            (verify, self.user_verifies),
            (get_code, self.sms_prefix),
        ];
        keyed
            .into_iter()
            .filter_map(|(rpc, rate)| Some((rpc, rate?.lifetime_us())))
    }
}

/// Whether `limit` is a rate of a caller or an RPC, not a user's limit.
fn is_rate(limit: Limit) -> bool {
    matches!(limit, Limit::CallerRate | Limit::RpcRate(_))
}

/// A per-second RPC rate's `n` (its span is about one second).
fn per_sec(rate: &Rate) -> u32 {
    u32::try_from(rate.span_us / rate.interval_us).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: Operation) -> Call<'static> {
        Call {
            operation,
            user: "pool-1|alice-sub",
            attribute: "email",
            caller: "spiffe://example/caller",
        }
    }

    fn limits(config: &LimitsConfig, operation: Operation) -> Vec<Limit> {
        let rates = Rates::new(config);
        rates
            .rules(&call(operation))
            .iter()
            .map(|r| r.limit)
            .collect()
    }

    #[test]
    fn the_table_of_limits_per_operation() {
        let send = Operation::GetUserAttributeVerificationCode;
        let verify = Operation::VerifyUserAttribute;
        let mut config = LimitsConfig::default();
        assert_eq!(
            limits(&config, send),
            [
                Limit::SendCooldown,
                Limit::UserSendQuota,
                Limit::RpcRate(send)
            ]
        );
        assert_eq!(
            limits(&config, verify),
            [Limit::UserVerifyQuota, Limit::RpcRate(verify)]
        );
        config.caller_sends_per_minute = 10;
        assert!(limits(&config, send).contains(&Limit::CallerRate));
        // 0 turns each off.
        config = LimitsConfig::off();
        assert!(limits(&config, send).is_empty());
        assert!(limits(&config, verify).is_empty());
    }

    #[test]
    fn keys_are_hashed_bounded_and_distinct() {
        let rates = Rates::new(&LimitsConfig {
            caller_sends_per_minute: 1,
            ..LimitsConfig::default()
        });
        let long_user = "u".repeat(10_000);
        let mut c = call(Operation::GetUserAttributeVerificationCode);
        c.user = &long_user;
        let rules = rates.rules(&c);
        for rule in &rules {
            assert!(rule.key.redis.starts_with(KEY_PREFIX));
            assert!(rule.key.redis.len() <= 80, "{}", rule.key.redis);
            assert!(!rule.key.redis.contains("uuu"));
            assert!(!rule.key.redis.contains("spiffe"));
            assert!(!rule.key.redis.contains("email"));
        }
        assert_eq!(
            rules[3].key.redis,
            "cognito-verify:limits:rpc:GetUserAttributeVerificationCode"
        );
        // The same user under another kind, and shifted field boundaries,
        // give other keys.
        assert_ne!(
            Key::new("user-sends", &["a"]),
            Key::new("user-verifies", &["a"])
        );
        assert_ne!(
            Key::new("cooldown", &["ab", "c"]),
            Key::new("cooldown", &["a", "bc"])
        );
        assert_eq!(
            Key::new("cooldown", &["a", "b"]),
            Key::new("cooldown", &["a", "b"])
        );
    }
}
