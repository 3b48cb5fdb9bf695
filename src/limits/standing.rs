//! A user's limits as they stand, read without consuming anything: what
//! the status RPC tells a caller ("resend in 42 s, 3 tries left"). The same
//! GCRA arithmetic as a decision ([`gcra`](super::gcra)), on the TATs read
//! from Redis (one read-only script, Redis' clock) or from this replica's
//! store; nothing is written, locally or on Redis.

use std::time::Duration;

use super::{day_of, gcra::Rate, micros, Limit, Limits, Refusal};

/// An attribute whose sends the caller asks about.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// `email` or `phone_number`.
    pub attribute: &'a str,
    /// Whether a code for it goes by SMS (the SMS guard's limits apply).
    pub sms: bool,
    /// The number's prefix for the SMS prefix limit, when known.
    pub sms_prefix: Option<&'a str>,
}

/// Where a user stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// Per attribute asked, in order: when a send would be admitted.
    pub sends: Vec<SendStanding>,
    /// Codes left now under the hourly quota; `None` when it is off.
    pub sends_left: Option<u32>,
    /// Verification attempts left now; `None` when that quota is off.
    pub verifies_left: Option<u32>,
}

/// When a send for one attribute would be admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendStanding {
    /// Zero when it would be now.
    pub wait: Duration,
    /// The limit with the longest wait, when there is a wait.
    pub blocked_by: Option<Limit>,
}

/// One limit read: the wait of a call now, and how many calls fit now.
fn read(tat: Option<i64>, now: i64, rate: Rate) -> (i64, u32) {
    let tat = tat.map_or(now, |tat| tat.max(now));
    let wait = (tat + rate.interval_us - rate.span_us - now).max(0);
    let left = (now + rate.span_us - tat).max(0) / rate.interval_us;
    (wait, u32::try_from(left).unwrap_or(u32::MAX))
}

impl Limits {
    /// Reads where `user` stands for each of `asked`, consuming nothing.
    /// With Redis failing, the failure mode applies as to a decision.
    pub async fn standing(&self, user: &str, asked: &[Asked<'_>]) -> Result<Standing, Refusal> {
        let inner = &*self.0;
        let names: Vec<&str> = asked.iter().map(|a| a.attribute).collect();
        let prefix = asked.iter().find_map(|a| a.sms_prefix);
        let rules = inner.rates.standing_rules(user, &names, prefix);
        let present: Vec<_> = rules.iter().filter_map(|(_, r)| r.as_ref()).collect();
        let mut read_back = None;
        if let Some(remote) = &inner.remote {
            match remote.peek(&present).await {
                Ok(values) => read_back = Some(values),
                // Counted as a fallback, or refused in `Deny`, as a decision.
                Err(_) => self.fell_back(remote)?,
            }
        }
        let (now, day_count, tats) = match read_back {
            Some(values) => values,
            None => {
                let now = (inner.clock)();
                let (day, _) = day_of(now);
                let count = inner
                    .daily
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .of(day);
                let tats = inner.local.peek(present.iter().map(|r| r.key.local), now);
                (now, count, tats)
            }
        };
        // Each limit's (wait, left), in the order of `rules`; `None` if off.
        let mut tats = tats.into_iter();
        let reads: Vec<(Limit, Option<(i64, u32)>)> = rules
            .iter()
            .map(|(limit, rule)| {
                let read = rule.as_ref().map(|rule| {
                    let tat = tats.next().flatten();
                    read(tat, now, rule.rate)
                });
                (*limit, read)
            })
            .collect();
        let at = |limit: Limit| {
            reads
                .iter()
                .find(|(l, _)| *l == limit)
                .and_then(|(_, r)| *r)
        };
        let daily = inner.config.sms_per_day;
        let daily_wait = (daily > 0 && day_count >= i64::from(daily)).then(|| day_of(now).1);
        let sends = asked
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut waits = vec![
                    (Limit::SendCooldown, reads[i].1.map(|(w, _)| w)),
                    (
                        Limit::UserSendQuota,
                        at(Limit::UserSendQuota).map(|(w, _)| w),
                    ),
                ];
                if a.sms {
                    if a.sms_prefix.is_some() {
                        waits.push((Limit::SmsPrefix, at(Limit::SmsPrefix).map(|(w, _)| w)));
                    }
                    waits.push((Limit::SmsDaily, daily_wait));
                }
                let worst = waits
                    .into_iter()
                    .filter_map(|(limit, wait)| Some((limit, wait?)))
                    .filter(|(_, wait)| *wait > 0)
                    .fold(
                        None,
                        |worst: Option<(Limit, i64)>, (limit, wait)| match worst {
                            Some((_, w)) if w >= wait => worst,
                            _ => Some((limit, wait)),
                        },
                    );
                SendStanding {
                    wait: worst.map_or(Duration::ZERO, |(_, w)| micros(w)),
                    blocked_by: worst.map(|(limit, _)| limit),
                }
            })
            .collect();
        Ok(Standing {
            sends,
            sends_left: at(Limit::UserSendQuota).map(|(_, left)| left),
            verifies_left: at(Limit::UserVerifyQuota).map(|(_, left)| left),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;
    const NOW: i64 = 1_750_000_000 * SEC;

    #[test]
    fn a_read_matches_what_a_decision_would_do() {
        let rate = Rate::per(5, Duration::from_secs(3600)).unwrap();
        assert_eq!(read(None, NOW, rate), (0, 5));
        // After two calls now: three left, no wait.
        let tat = NOW + 2 * 720 * SEC;
        assert_eq!(read(Some(tat), NOW, rate), (0, 3));
        // After five: none left, one interval to wait; a decision agrees.
        let tat = NOW + 5 * 720 * SEC;
        assert_eq!(read(Some(tat), NOW, rate), (720 * SEC, 0));
        assert_eq!(
            super::super::gcra::decide(Some(tat), NOW, rate),
            Err(720 * SEC)
        );
        // A TAT in the past is no TAT.
        assert_eq!(read(Some(NOW - 7200 * SEC), NOW, rate), (0, 5));
    }
}
