//! Brute-force guard: after `max_failures` failed authentications for one user, or
//! from one source address, within `failure_window_s`, further attempts for that user
//! or from that address are refused for `lockout_s` without checking the credentials
//! (`[auth]` keys; docs/security.md). Bounded: entries are purged once their window
//! and lockout are over.

use crate::config::AuthConfig;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start_ms: i64,
    failures: u32,
    locked_until_ms: i64,
}

/// Failure counters per user and per address.
#[derive(Debug, Default)]
pub struct Guard {
    max_failures: u32,
    window_ms: i64,
    lockout_ms: i64,
    users: BTreeMap<String, Window>,
    addrs: BTreeMap<String, Window>,
}

impl Guard {
    /// A guard with the `[auth]` settings.
    pub fn new(cfg: &AuthConfig) -> Guard {
        Guard {
            max_failures: cfg.max_failures.max(1),
            window_ms: i64::from(cfg.failure_window_s) * 1000,
            lockout_ms: i64::from(cfg.lockout_s) * 1000,
            ..Default::default()
        }
    }

    /// Whether attempts for `user` (lower-case key) or from `addr` are refused now.
    pub fn locked(&self, user: &str, addr: &str, now_ms: i64) -> bool {
        let locked = |m: &BTreeMap<String, Window>, k: &str| {
            m.get(k).is_some_and(|w| w.locked_until_ms > now_ms)
        };
        locked(&self.users, user) || locked(&self.addrs, addr)
    }

    /// Counts a failure for `user` from `addr`; returns true when this one locked
    /// either of them (logged by the caller at warn).
    pub fn fail(&mut self, user: &str, addr: &str, now_ms: i64) -> bool {
        let (max, window, lockout) = (self.max_failures, self.window_ms, self.lockout_ms);
        let bump = |m: &mut BTreeMap<String, Window>, k: &str| {
            let w = m.entry(k.to_string()).or_default();
            if now_ms - w.start_ms > window {
                w.start_ms = now_ms;
                w.failures = 0;
            }
            w.failures += 1;
            if w.failures >= max && w.locked_until_ms <= now_ms {
                w.locked_until_ms = now_ms + lockout;
                w.failures = 0;
                return true;
            }
            false
        };
        let a = bump(&mut self.users, user);
        let b = bump(&mut self.addrs, addr);
        a || b
    }

    /// A success for `user`: its failure count starts again.
    pub fn succeed(&mut self, user: &str) {
        if let Some(w) = self.users.get_mut(user) {
            w.failures = 0;
        }
    }

    /// Forgets entries whose window and lockout are over.
    pub fn purge(&mut self, now_ms: i64) {
        let window = self.window_ms;
        let keep = |w: &mut Window| w.locked_until_ms > now_ms || now_ms - w.start_ms <= window;
        self.users.retain(|_, w| keep(w));
        self.addrs.retain(|_, w| keep(w));
    }

    /// Entries held (for tests).
    pub fn entries(&self) -> usize {
        self.users.len() + self.addrs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_n_failures_per_user_and_per_address_then_expires() {
        let cfg = AuthConfig {
            max_failures: 3,
            failure_window_s: 10,
            lockout_s: 60,
            ..Default::default()
        };
        let mut g = Guard::new(&cfg);
        assert!(!g.fail("u", "1.2.3.4", 0));
        assert!(!g.fail("u", "1.2.3.4", 1));
        assert!(!g.locked("u", "5.6.7.8", 2));
        assert!(g.fail("u", "1.2.3.4", 2), "third failure locks");
        assert!(g.locked("u", "5.6.7.8", 3), "user locked from any address");
        assert!(g.locked("v", "1.2.3.4", 3), "address locked for any user");
        assert!(!g.locked("v", "5.6.7.8", 3));
        assert!(!g.locked("u", "1.2.3.4", 60_003), "lockout over");
        // Failures spread wider than the window do not add up.
        let mut g = Guard::new(&cfg);
        for t in 0..5 {
            assert!(!g.fail("w", "a", t * 20_000));
        }
        g.purge(200_000);
        assert_eq!(g.entries(), 0);
    }
}
