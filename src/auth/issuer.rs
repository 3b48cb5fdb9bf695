//! Which issuers a token may come from: Cognito's pool-id shape, the exact
//! issuer URL of a real user pool, and the `--user-pool` allowlist. Plain
//! byte checks, no regex: this runs on every RPC, before anything costly.

/// Most characters in a user pool id (Cognito's service model).
const POOL_ID_MAX_CHARS: usize = 55;

/// Splits a pool id of the service model's shape `[\w-]+_[0-9a-zA-Z]+`
/// (1–55 characters) into its region prefix and its id. The id has no `_`,
/// so the split is at the last one.
pub(crate) fn split_pool_id(pool: &str) -> Option<(&str, &str)> {
    if pool.len() > POOL_ID_MAX_CHARS {
        return None;
    }
    let (region, id) = pool.rsplit_once('_')?;
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let valid = !region.is_empty()
        && region.bytes().all(word)
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then_some((region, id))
}

/// The shape of an AWS region: lower-case words joined by `-`, ending in a
/// number: `us-east-1`, `eu-central-1`, `us-gov-west-1`, `eusc-de-east-1`.
/// It becomes part of a host name, so nothing else may pass.
pub(crate) fn is_aws_region(region: &str) -> bool {
    let lower = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase());
    let Some((words, number)) = region.rsplit_once('-') else {
        return false;
    };
    let Some((first, middle)) = words.split_once('-') else {
        return false;
    };
    (2..=4).contains(&first.len())
        && lower(first)
        && middle.split('-').all(lower)
        && (1..=2).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The accepted issuers, from the configuration.
#[derive(Debug)]
pub(crate) struct Issuers {
    /// `--user-pool`; empty accepts any pool.
    allowed: Box<[String]>,
    /// True with a `--cognito-endpoint` override: emulators issue tokens
    /// under their own host, so only the pool id is checked.
    any_host: bool,
}

impl Issuers {
    /// The issuer rules for `allowed` pools, with or without an endpoint
    /// override.
    pub(crate) fn new(allowed: &[String], endpoint_override: bool) -> Self {
        Self {
            allowed: allowed.into(),
            any_host: endpoint_override,
        }
    }

    /// Whether `pool` is a pool id these rules can accept at all: the model's
    /// shape, and without an override an AWS region as its prefix (with one,
    /// emulators' ids such as cognito-local's `local_…` pass).
    pub(crate) fn is_pool_id(&self, pool: &str) -> bool {
        split_pool_id(pool).is_some_and(|(region, _)| self.any_host || is_aws_region(region))
    }

    /// The pool id and region of an accepted issuer; `None` when the issuer
    /// is not a user pool's, or not one of the allowed pools.
    pub(crate) fn accept<'i>(&self, iss: &'i str) -> Option<(&'i str, &'i str)> {
        let (prefix, pool) = iss.rsplit_once('/')?;
        let (region, _) = split_pool_id(pool)?;
        if !self.any_host {
            let host = prefix
                .strip_prefix("https://cognito-idp.")?
                .strip_suffix(".amazonaws.com")?;
            if host != region || !is_aws_region(region) {
                return None;
            }
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|p| p == pool) {
            return None;
        }
        Some((pool, region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_id_shape_is_the_models() {
        assert_eq!(
            split_pool_id("eu-west-1_AbCdEf123"),
            Some(("eu-west-1", "AbCdEf123"))
        );
        assert_eq!(split_pool_id("local_x1"), Some(("local", "x1")));
        assert_eq!(split_pool_id("a_b_c9"), Some(("a_b", "c9")));
        let longest = format!("us-east-1_{}", "a".repeat(45));
        assert_eq!(longest.len(), 55);
        assert!(split_pool_id(&longest).is_some());
        for bad in [
            "",
            "nounderscore",
            "_abc",
            "us-east-1_",
            "us-east-1_ab-c",
            "us.east_abc",
            "us-east-1_ab/c",
            "us east_1",
            &format!("us-east-1_{}", "a".repeat(46)),
        ] {
            assert_eq!(split_pool_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-central-1",
            "us-gov-west-1",
            "ap-southeast-7",
            "eusc-de-east-1",
        ] {
            assert!(is_aws_region(ok), "{ok}");
        }
        for bad in [
            "",
            "local",
            "us-east",
            "us_east_1",
            "US-EAST-1",
            "us--1",
            "us-east-1a",
            "u-east-1",
            "us-east-123",
        ] {
            assert!(!is_aws_region(bad), "{bad}");
        }
    }

    #[test]
    fn without_override_the_issuer_is_exactly_cognitos() {
        let any = Issuers::new(&[], false);
        let iss = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc";
        assert_eq!(any.accept(iss), Some(("eu-west-1_Abc", "eu-west-1")));
        for bad in [
            // another region's host
            "https://cognito-idp.us-east-1.amazonaws.com/eu-west-1_Abc",
            "http://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
            "https://cognito-idp.eu-west-1.amazonaws.com.evil.example/eu-west-1_Abc",
            "https://evil.example/eu-west-1_Abc",
            "https://cognito-idp.eu-west-1.amazonaws.com/x/eu-west-1_Abc",
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc/",
            "https://cognito-idp.local.amazonaws.com/local_Abc",
            "eu-west-1_Abc",
        ] {
            assert_eq!(any.accept(bad), None, "{bad}");
        }
        assert!(any.is_pool_id("eu-west-1_Abc"));
        assert!(!any.is_pool_id("local_Abc"));
    }

    #[test]
    fn with_override_only_the_pool_id_counts() {
        let any = Issuers::new(&[], true);
        assert_eq!(
            any.accept("http://localhost:9229/local_Abc"),
            Some(("local_Abc", "local"))
        );
        assert_eq!(
            any.accept("http://127.0.0.1:1/us-east-1_X"),
            Some(("us-east-1_X", "us-east-1"))
        );
        assert_eq!(any.accept("http://localhost:9229/not-a-pool"), None);
        assert_eq!(any.accept("local_Abc"), None);
        assert!(any.is_pool_id("local_Abc"));
    }

    #[test]
    fn allowlist() {
        let only = Issuers::new(&["eu-west-1_Abc".to_owned()], false);
        assert!(only
            .accept("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc")
            .is_some());
        assert_eq!(
            only.accept("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"),
            None
        );
    }
}
