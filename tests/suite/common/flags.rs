//! The `serve` flags a facade under test starts with unless it sets them
//! itself, in one place for the three that start one: the facade in-process
//! (`common::serve_config`), the binary as a child process
//! (`common::binary`) and the bench (`benches/facade/procs.rs`).
//!
//! A bench cannot import a module of the test binary, so it includes this
//! file by path (`#[path = ...] mod flags;`), as it includes
//! `common/requests.rs` and the hostile tests' raw HTTP/2 client. Hence
//! this file uses nothing but `std`, and holds only the lists and the rule
//! that applies them; each caller adds its own (the tests' user pools, the
//! bench's).

/// Production defaults that get in the way of every facade under test.
pub const LOOSE: [(&str, &str); 6] = [
    // No metrics listener: a test or scenario that scrapes asks for one.
    ("--admin-listen", "off"),
    // Unsigned tokens: a scripted endpoint serves no keys. Tests of the
    // check turn it on.
    ("--token-signature-check", "off"),
    // One user calls far more often than a user may: no per-user limits.
    ("--send-cooldown-secs", "0"),
    ("--user-sends-per-hour", "0"),
    ("--user-verifies-per-hour", "0"),
    // Off by default already; said here so a new default stays out too.
    ("--caller-sends-per-minute", "0"),
];

/// The per-replica RPC rates (25 per second each in production) off: for
/// the in-process facade and the bench. The child-process tests keep them,
/// as the binary ships: `hostile::tokens` shows a flood spends none of
/// them, and `process` sets one through the environment, which a flag
/// would override.
pub const RPC_RATES_OFF: [(&str, &str); 3] = [
    ("--get-code-limit-per-sec", "0"),
    ("--verify-limit-per-sec", "0"),
    ("--status-limit-per-sec", "0"),
];

/// The flags and values of `defaults` that `args` does not set, in order,
/// ready to go before `args`. `--user-pool` is left out too when `args`
/// has `--any-user-pool`, which contradicts it.
pub fn unless_set<'a>(defaults: &[(&'a str, &'a str)], args: &[&str]) -> Vec<&'a str> {
    defaults
        .iter()
        .filter(|(flag, _)| !args.contains(flag))
        .filter(|(flag, _)| *flag != "--user-pool" || !args.contains(&"--any-user-pool"))
        .flat_map(|&(flag, value)| [flag, value])
        .collect()
}
