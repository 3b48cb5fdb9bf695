//! The service tried as an attacker would, each attack over real sockets
//! against the defaults the repository ships: what it sends, and what must
//! hold while it does (`docs/threat-model.md` names each test).
//!
//! - [`tokens`]: forged tokens for made-up and real user pools, key sets
//!   that are slow, missing or stale;
//! - [`edge`]: streams that never finish their message, huge messages,
//!   descriptor floods on every listener.

mod edge;
mod h2raw;
mod tokens;
