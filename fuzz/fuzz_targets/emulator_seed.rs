//! The embedded backend's seed files (`emulator::store::Seed`): the input is
//! parsed as JSON and as YAML, as `Seed::load` does by file extension, then
//! validated and built into the directory. Checks: no panic, and a seed that
//! validates builds, with every pool, client and user findable.

#![no_main]
#![forbid(unsafe_code)]

use cognito_emulator::{store::Directory, store::Seed};
use libfuzzer_sys::fuzz_target;

fn check(seed: Seed) {
    let valid = seed.validate().is_ok();
    let expected = seed.clone();
    match Directory::from_seed(seed) {
        Ok(directory) => {
            assert!(valid);
            for p in &expected.pools {
                let pool = directory.pool(&p.id).expect("seeded pool");
                for c in &p.clients {
                    assert!(directory.pool_of_client(&c.client_id).is_some());
                }
                for u in &p.users {
                    assert!(pool.user(&u.username).is_some());
                }
            }
        }
        Err(message) => {
            assert!(!valid);
            assert!(!message.is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // `Seed::load` reads the file as UTF-8 text first.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(seed) = serde_json::from_str::<Seed>(text) {
        check(seed);
    }
    if let Ok(seed) = serde_yaml_ng::from_str::<Seed>(text) {
        check(seed);
    }
});
