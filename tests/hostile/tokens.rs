//! Attacks with forged tokens (see main.rs).
