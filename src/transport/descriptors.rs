//! One open-file budget for the whole process. Every connection of every
//! listener takes a descriptor, and so does what the process opens itself:
//! the connections to Cognito, the key-set fetches, Redis, the trace
//! exporter, the log and audit files, the runtime. They all share one
//! descriptor table: once it is full, `accept` fails on *every* port
//! (EMFILE). 600 silent connections to the metrics port of a process
//! limited to 512 descriptors once made the gRPC and health ports time out
//! until those sockets closed.
//!
//! So each listener has a connection cap, and the caps plus a reserve for
//! the rest must fit under the open-file limit: the soft limit is raised to
//! what they need when the hard limit allows it; when it does not, the caps
//! shrink to fit, with one warning at start. The gRPC cap shrinks most: it
//! is the largest, and the health and metrics ports need only a few
//! connections each.

/// Descriptors kept for everything but the listeners' connections: the
/// pool towards Cognito (no cap of its own: its connections follow the
/// calls in flight, up to `--max-concurrent-rpcs`; the soft limit is raised
/// to the hard one so that a burst of them finds room beyond this reserve),
/// the key-set fetches (8 at once by default), Redis (one
/// multiplexed connection, and one being re-established), the trace
/// exporter, the log and audit files, the runtime's own (epoll, event and
/// signal descriptors), the three listening sockets and the one descriptor
/// each accept loop needs to close a connection over its cap.
pub const RESERVE: u64 = 256;

/// Share of the descriptors left for connections that the health and
/// metrics ports may keep when the limit is short: a quarter.
const SIDE_SHARE_DIVISOR: u64 = 4;

/// The connection cap of each listener (`None`: that listener is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerCaps {
    /// The gRPC port (`--max-connections`).
    pub grpc: u32,
    /// The plaintext health port.
    pub health: Option<u32>,
    /// The admin (metrics) port.
    pub admin: Option<u32>,
}

impl ListenerCaps {
    fn sides(&self) -> u64 {
        u64::from(self.health.unwrap_or(0)) + u64::from(self.admin.unwrap_or(0))
    }

    /// Descriptors all the listeners' connections take at most.
    pub fn total(&self) -> u64 {
        u64::from(self.grpc) + self.sides()
    }
}

/// Raises the soft open-file limit to the hard limit, and returns the caps
/// that fit with [`RESERVE`] under it: `wanted` when it is high enough,
/// smaller caps (and one warning) when it is not.
pub fn fit_open_file_limit(wanted: ListenerCaps) -> ListenerCaps {
    let needed = wanted.total() + RESERVE;
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit; connection caps unchanged");
            return wanted;
        }
    };
    let fitted = fit(wanted, limit);
    if fitted != wanted {
        tracing::warn!(
            open_file_limit = limit,
            needed,
            max_connections = fitted.grpc,
            health_max_connections = fitted.health,
            admin_max_connections = fitted.admin,
            "the open-file limit is lower than the connection caps need: caps lowered to fit (raise the limit, e.g. `ulimit -n`, to keep --max-connections)"
        );
    }
    fitted
}

/// The caps that fit, with a reserve, under `limit` descriptors: `wanted`
/// if it fits; otherwise the side listeners keep at most a quarter of what
/// is left after the reserve (each at least one connection) and the gRPC
/// port the rest. The reserve itself is at most half the limit, so that a
/// very low limit still serves some connections.
pub fn fit(wanted: ListenerCaps, limit: u64) -> ListenerCaps {
    let reserve = RESERVE.min(limit / 2);
    let available = limit.saturating_sub(reserve);
    if wanted.total() <= available {
        return wanted;
    }
    let sides = wanted.sides();
    let side_room = available / SIDE_SHARE_DIVISOR;
    let side = |cap: u32| -> u32 {
        if sides <= side_room {
            return cap;
        }
        let scaled = u64::from(cap) * side_room / sides;
        u32::try_from(scaled).unwrap_or(cap).clamp(1, cap)
    };
    let health = wanted.health.map(side);
    let admin = wanted.admin.map(side);
    let taken = u64::from(health.unwrap_or(0)) + u64::from(admin.unwrap_or(0));
    let grpc = u32::try_from(available.saturating_sub(taken))
        .unwrap_or(u32::MAX)
        .clamp(1, wanted.grpc);
    ListenerCaps {
        grpc,
        health,
        admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: ListenerCaps = ListenerCaps {
        grpc: 2_048,
        health: Some(64),
        admin: Some(16),
    };

    #[test]
    fn a_high_enough_limit_keeps_every_cap() {
        assert_eq!(fit(DEFAULTS, 1 << 20), DEFAULTS);
        assert_eq!(fit(DEFAULTS, DEFAULTS.total() + RESERVE), DEFAULTS);
    }

    #[test]
    fn a_short_limit_shrinks_the_grpc_cap_most_and_keeps_the_reserve() {
        let fitted = fit(DEFAULTS, 512);
        assert_eq!(fitted.health, Some(51));
        assert_eq!(fitted.admin, Some(12));
        assert_eq!(fitted.grpc, 512 - RESERVE as u32 - 51 - 12);
        assert!(fitted.total() + RESERVE <= 512);
        // Without side listeners the gRPC port gets all that is left.
        let grpc_only = ListenerCaps {
            health: None,
            admin: None,
            ..DEFAULTS
        };
        assert_eq!(fit(grpc_only, 1_024).grpc, 1_024 - RESERVE as u32);
    }

    #[test]
    fn side_listeners_that_fit_their_share_keep_their_caps() {
        let fitted = fit(DEFAULTS, 1_024);
        assert_eq!((fitted.health, fitted.admin), (Some(64), Some(16)));
        assert_eq!(fitted.grpc, 1_024 - RESERVE as u32 - 80);
    }

    #[test]
    fn a_tiny_limit_still_leaves_every_listener_a_connection() {
        for limit in [0, 1, 8, 40] {
            let fitted = fit(DEFAULTS, limit);
            assert!(fitted.grpc >= 1 && fitted.health >= Some(1) && fitted.admin >= Some(1));
        }
        let fitted = fit(DEFAULTS, 40);
        assert!(fitted.total() <= 40 - 20, "{fitted:?}");
    }
}
