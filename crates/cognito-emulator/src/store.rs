//! Pools, app clients and users, loaded once from a seed. The directory is
//! immutable after start-up (no operation creates users), so it needs no lock;
//! each user's mutable state (attributes, codes, sessions, counters) has a
//! mutex of its own, held only for in-memory work.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    path::Path,
    sync::{Arc, Mutex},
};

use serde::Deserialize;

/// The seed file: pools with their clients and users. JSON, or YAML for a
/// `.yaml` / `.yml` file. Member names follow Cognito's API.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Seed {
    /// The user pools.
    pub pools: Vec<PoolSeed>,
}

/// One user pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PoolSeed {
    /// Pool id, e.g. `us-east-1_DevPool01`.
    pub id: String,
    /// Attributes verified by a code sent when they are added or changed.
    #[serde(default)]
    pub auto_verified_attributes: Vec<String>,
    /// Attributes whose new value stays pending until verified.
    #[serde(default)]
    pub attributes_require_verification_before_update: Vec<String>,
    /// App clients.
    pub clients: Vec<ClientSeed>,
    /// Users.
    #[serde(default)]
    pub users: Vec<UserSeed>,
}

/// One app client.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ClientSeed {
    /// Client id.
    pub client_id: String,
    /// Display name.
    #[serde(default)]
    pub client_name: Option<String>,
}

/// One user.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UserSeed {
    /// Username.
    pub username: String,
    /// Password for USER_PASSWORD_AUTH.
    pub password: String,
    /// Attributes, e.g. `email`, `phone_number`, `email_verified`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Seed {
    /// Reads a seed file (YAML for `.yaml`/`.yml`, JSON otherwise).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("seed {}: {e}", path.display()))?;
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        let seed: Seed = if yaml {
            serde_yaml_ng::from_str(&text).map_err(|e| format!("seed {}: {e}", path.display()))?
        } else {
            serde_json::from_str(&text).map_err(|e| format!("seed {}: {e}", path.display()))?
        };
        Ok(seed)
    }

    /// Checks what the format cannot: unique pool ids and usernames, and only
    /// `email` / `phone_number` as verified attributes.
    pub fn validate(&self) -> Result<(), String> {
        let mut pools = HashSet::new();
        for p in &self.pools {
            if !pools.insert(&p.id) {
                return Err(format!("duplicate pool {:?}", p.id));
            }
            for attr in p
                .auto_verified_attributes
                .iter()
                .chain(&p.attributes_require_verification_before_update)
            {
                if attr != "email" && attr != "phone_number" {
                    return Err(format!(
                        "pool {}: only email and phone_number can be verified, not {attr:?}",
                        p.id
                    ));
                }
            }
            let mut users = HashSet::new();
            for u in &p.users {
                if !users.insert(&u.username) {
                    return Err(format!("pool {}: duplicate user {:?}", p.id, u.username));
                }
            }
        }
        Ok(())
    }

    /// The built-in demo pool: one client and a user with an email address and
    /// a phone number, both unverified and both auto-verified; and users
    /// whose numbers are in other countries ([`DEMO_ABROAD`]), for trying an
    /// SMS country rule.
    pub fn demo() -> Self {
        let abroad = DEMO_ABROAD
            .iter()
            .map(|(username, country, phone)| UserSeed {
                username: (*username).into(),
                password: DEMO_PASSWORD.into(),
                attributes: BTreeMap::from([
                    (
                        "email".into(),
                        format!("{}@example.com", country.to_lowercase()),
                    ),
                    ("email_verified".into(), "false".into()),
                    ("phone_number".into(), (*phone).into()),
                    ("phone_number_verified".into(), "false".into()),
                ]),
            });
        Seed {
            pools: vec![PoolSeed {
                id: DEMO_POOL.into(),
                auto_verified_attributes: vec!["email".into(), "phone_number".into()],
                attributes_require_verification_before_update: vec![
                    "email".into(),
                    "phone_number".into(),
                ],
                clients: vec![ClientSeed {
                    client_id: DEMO_CLIENT.into(),
                    client_name: Some("dev".into()),
                }],
                users: vec![UserSeed {
                    username: DEMO_USER.into(),
                    password: DEMO_PASSWORD.into(),
                    attributes: BTreeMap::from([
                        ("email".into(), "demo@example.com".into()),
                        ("email_verified".into(), "false".into()),
                        ("phone_number".into(), "+12065550100".into()),
                        ("phone_number_verified".into(), "false".into()),
                    ]),
                }]
                .into_iter()
                .chain(abroad)
                .collect(),
            }],
        }
    }
}

/// The demo pool's id.
pub const DEMO_POOL: &str = "us-east-1_DevPool01";
/// The demo app client's id.
pub const DEMO_CLIENT: &str = "devclient0000000000000001";
/// The demo user's name.
pub const DEMO_USER: &str = "demo";
/// The demo pool's users abroad: name, country, phone number (fictional
/// numbers: the UK's drama range, France's and India's mobile plans). Same
/// password as the demo user.
pub const DEMO_ABROAD: [(&str, &str, &str); 3] = [
    ("demo-gb", "GB", "+447700900123"),
    ("demo-fr", "FR", "+33612345678"),
    ("demo-in", "IN", "+919876543210"),
];
/// The demo user's password (a local, throwaway backend).
pub const DEMO_PASSWORD: &str = "DemoPassw0rd!";

/// A code sent for one attribute.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The code.
    pub code: String,
    /// Seconds since the epoch after which it no longer works.
    pub expires_at: u64,
    /// Used codes cannot be used again.
    pub used: bool,
}

/// A user's mutable state.
#[derive(Debug)]
pub struct User {
    /// Username.
    pub username: String,
    /// Immutable id.
    pub sub: String,
    /// Password.
    pub password: String,
    /// Current attribute values (`sub` is separate).
    pub attributes: BTreeMap<String, String>,
    /// Values waiting for verification before they replace the current ones.
    pub pending: BTreeMap<String, String>,
    /// Live sign-in sessions (`origin_jti`); GlobalSignOut clears them.
    pub sessions: HashSet<String>,
    /// The live code per attribute.
    pub codes: HashMap<String, IssuedCode>,
    /// When codes were requested (for the per-hour limit).
    pub code_requests: VecDeque<u64>,
    /// When wrong codes were submitted (for the per-hour limit).
    pub failed_attempts: VecDeque<u64>,
}

/// One user pool.
#[derive(Debug)]
pub struct Pool {
    /// Pool id.
    pub id: String,
    /// App client ids.
    pub clients: HashSet<String>,
    /// Auto-verified attributes.
    pub auto_verified: HashSet<String>,
    /// Attributes whose change stays pending until verified.
    pub verify_before_update: HashSet<String>,
    users: HashMap<String, Arc<Mutex<User>>>,
}

impl Pool {
    /// A user by name.
    pub fn user(&self, username: &str) -> Option<&Arc<Mutex<User>>> {
        self.users.get(username)
    }
}

/// Every pool.
#[derive(Debug)]
pub struct Directory {
    pools: HashMap<String, Pool>,
}

impl Directory {
    /// Builds the directory from a seed that passes [`Seed::validate`].
    pub fn from_seed(seed: Seed) -> Result<Self, String> {
        seed.validate()?;
        let mut pools = HashMap::new();
        for p in seed.pools {
            let mut users = HashMap::new();
            for u in p.users {
                let mut attributes = u.attributes;
                let sub = attributes
                    .remove("sub")
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let user = User {
                    username: u.username.clone(),
                    sub,
                    password: u.password,
                    attributes,
                    pending: BTreeMap::new(),
                    sessions: HashSet::new(),
                    codes: HashMap::new(),
                    code_requests: VecDeque::new(),
                    failed_attempts: VecDeque::new(),
                };
                users.insert(u.username, Arc::new(Mutex::new(user)));
            }
            let pool = Pool {
                id: p.id.clone(),
                clients: p.clients.into_iter().map(|c| c.client_id).collect(),
                auto_verified: p.auto_verified_attributes.into_iter().collect(),
                verify_before_update: p
                    .attributes_require_verification_before_update
                    .into_iter()
                    .collect(),
                users,
            };
            pools.insert(p.id, pool);
        }
        Ok(Self { pools })
    }

    /// A pool by id.
    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.get(id)
    }

    /// The pool an app client belongs to.
    pub fn pool_of_client(&self, client_id: &str) -> Option<&Pool> {
        self.pools.values().find(|p| p.clients.contains(client_id))
    }
}

/// Locks a user; a poisoned lock (a panic elsewhere) still holds valid data.
pub fn lock(user: &Mutex<User>) -> std::sync::MutexGuard<'_, User> {
    user.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed example of the crate's README, as written there.
    fn readme_seed() -> &'static str {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```yaml\n")
            .expect("the README has a YAML seed")
            + 8;
        let len = readme[start..].find("```").expect("the block ends");
        &readme[start..start + len]
    }

    #[test]
    fn yaml_and_json_seeds_load() {
        let dir = std::env::temp_dir().join(format!("cognito-verify-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("seed.yaml");
        std::fs::write(&yaml, readme_seed()).unwrap();
        let seed = Seed::load(&yaml).unwrap();
        assert_eq!(
            seed.pools[0].users[0].attributes["email"],
            "alice@example.com"
        );
        let directory = Directory::from_seed(seed).unwrap();
        let pool = directory
            .pool_of_client("exampleclient0000000000001")
            .unwrap();
        assert!(pool.user("alice").is_some() && pool.verify_before_update.contains("email"));

        let json = dir.join("seed.json");
        std::fs::write(
            &json,
            r#"{"Pools":[{"Id":"p","Clients":[{"ClientId":"c"}]}]}"#,
        )
        .unwrap();
        assert!(Seed::load(&json).unwrap().pools[0].users.is_empty());
        std::fs::write(&json, r#"{"Pools":[{"Id":"p","Clients":[],"Typo":1}]}"#).unwrap();
        assert!(Seed::load(&json).unwrap_err().contains("Typo"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_email_and_phone_can_be_auto_verified() {
        let mut seed = Seed::demo();
        seed.pools[0].auto_verified_attributes.push("name".into());
        assert!(Directory::from_seed(seed).is_err());
    }
}
