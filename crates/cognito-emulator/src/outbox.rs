//! Delivered messages. The backend sends no email or SMS: each message goes to
//! the log and to this bounded outbox, read over HTTP at `/_emulator/outbox`.

use std::{collections::VecDeque, sync::Mutex};

use serde::Serialize;
use serde_json::{json, Value};

/// Messages kept; older ones are dropped first.
pub const CAPACITY: usize = 1000;

/// One delivered verification code.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The pool.
    pub pool_id: String,
    /// The user.
    pub username: String,
    /// `email` or `phone_number`.
    pub attribute: String,
    /// `EMAIL` or `SMS`.
    pub medium: &'static str,
    /// The full address or number the message went to.
    pub destination: String,
    /// The code.
    pub code: String,
    /// When, in seconds since the epoch (backend clock).
    pub sent_at: u64,
}

impl Delivery {
    /// A delivery of `code` for `attribute` to `destination`.
    pub fn new(
        pool_id: &str,
        username: &str,
        attribute: &str,
        destination: String,
        code: String,
        sent_at: u64,
    ) -> Self {
        let medium = if attribute == "phone_number" {
            "SMS"
        } else {
            "EMAIL"
        };
        Self {
            pool_id: pool_id.to_owned(),
            username: username.to_owned(),
            attribute: attribute.to_owned(),
            medium,
            destination,
            code,
            sent_at,
        }
    }

    /// Cognito's `CodeDeliveryDetails`, with a masked destination.
    pub fn details(&self) -> Value {
        json!({
            "Destination": mask(&self.destination, self.medium),
            "DeliveryMedium": self.medium,
            "AttributeName": self.attribute,
        })
    }
}

/// Cognito's masking: `d***@e***` for email, `+*******0100` for phone.
pub fn mask(destination: &str, medium: &str) -> String {
    if medium == "SMS" {
        let digits = destination.chars().filter(char::is_ascii_digit).count();
        let tail: String = destination
            .chars()
            .skip(destination.chars().count().saturating_sub(4))
            .collect();
        format!("+{}{tail}", "*".repeat(digits.saturating_sub(4)))
    } else {
        let (local, domain) = destination.split_once('@').unwrap_or((destination, ""));
        let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
        format!("{}***@{}***", first(local), first(domain))
    }
}

/// The bounded outbox.
#[derive(Debug, Default)]
pub struct Outbox {
    messages: Mutex<VecDeque<Delivery>>,
}

impl Outbox {
    /// Records a delivery (and logs it: this log is the dev "inbox").
    pub fn push(&self, delivery: Delivery) {
        tracing::info!(
            // The target the dev log has always shown (and log filters name),
            // from when this crate was a module of the service.
            target: "cognito_verify::emulator::outbox",
            pool = %delivery.pool_id,
            username = %delivery.username,
            attribute = %delivery.attribute,
            destination = %delivery.destination,
            code = %delivery.code,
            "verification code delivered",
        );
        let mut messages = self
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if messages.len() == CAPACITY {
            messages.pop_front();
        }
        messages.push_back(delivery);
    }

    /// Messages, oldest first, optionally for one user and attribute.
    pub fn list(&self, username: Option<&str>, attribute: Option<&str>) -> Vec<Delivery> {
        let messages = self
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        messages
            .iter()
            .filter(|m| {
                username.is_none_or(|u| m.username == u)
                    && attribute.is_none_or(|a| m.attribute == a)
            })
            .cloned()
            .collect()
    }

    /// Empties the outbox.
    pub fn clear(&self) {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_like_cognito() {
        assert_eq!(mask("demo@example.com", "EMAIL"), "d***@e***");
        assert_eq!(mask("+12065550100", "SMS"), "+*******0100");
        assert_eq!(mask("+442071838750", "SMS"), "+********8750");
    }
}
