//! Fault controls for tests and the simulator: a small, explicit handle the host is
//! given (never global state). The binary never arms it; `pchat-sim` arms it from
//! scenario steps (`overload`, `store-fail`, `disk-full`) and from `explore`.
//!
//! A [`Faults`] handle is cheap to clone; all clones share one state. Under turmoil the
//! simulator and the server run on one thread, so arming is deterministic.

use std::sync::{Arc, Mutex};

/// How the store fails while a store fault is armed (see [`crate::store::FaultyStore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// Every call fails with an I/O error (SQLite `SQLITE_IOERR`).
    Io,
    /// Transactions and writes fail with "database is locked" (`SQLITE_BUSY`); reads work.
    Busy,
    /// Writes and commits fail with "database or disk is full" (`SQLITE_FULL`); reads
    /// and `BEGIN` work.
    DiskFull,
}

#[derive(Debug, Default)]
struct State {
    overload: bool,
    store: Option<StoreFault>,
    retry_dedup_disabled: bool,
    crash_cleanup_disabled: bool,
}

/// Shared fault switches: forced overload, store faults, and a planted-bug switch.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<State>>);

impl Faults {
    fn with<T: Default>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.0.lock().map(|mut s| f(&mut s)).unwrap_or_default()
    }

    /// Forced overload on/off: while on, the host answers every INFO with
    /// `503 Service Unavailable` + `Retry-After` (`[sip] retry_after_s`) before it
    /// reaches the channel service, exactly as when the core queue is full.
    pub fn set_overload(&self, on: bool) {
        self.with(|s| s.overload = on);
    }

    /// Whether forced overload is on.
    pub fn overloaded(&self) -> bool {
        self.with(|s| s.overload)
    }

    /// Arms (`Some`) or clears (`None`) a store fault.
    pub fn set_store_fault(&self, fault: Option<StoreFault>) {
        self.with(|s| s.store = fault);
    }

    /// The armed store fault, if any.
    pub fn store_fault(&self) -> Option<StoreFault> {
        self.with(|s| s.store)
    }

    /// **Planted bug, for tests of the QA tooling only**: turns off grpchat retry
    /// de-duplication, so that `pchat-sim explore` has a real defect to find and shrink.
    pub fn disable_retry_dedup(&self, disabled: bool) {
        self.with(|s| s.retry_dedup_disabled = disabled);
    }

    /// Whether grpchat retry de-duplication is on (it is unless a test planted the bug).
    pub fn retry_dedup_enabled(&self) -> bool {
        !self.with(|s| s.retry_dedup_disabled)
    }

    /// **Planted bug, for tests of the QA tooling only**: a starting server no longer
    /// closes the sessions its crashed previous run left open (no PART events for
    /// them), so that the "sessions of crashed hosts cleaned up" invariant has a real
    /// defect to find.
    pub fn disable_crash_cleanup(&self, disabled: bool) {
        self.with(|s| s.crash_cleanup_disabled = disabled);
    }

    /// Whether a starting server closes its previous run's sessions (it does unless a
    /// test planted the bug).
    pub fn crash_cleanup_enabled(&self) -> bool {
        !self.with(|s| s.crash_cleanup_disabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_state() {
        let a = Faults::default();
        let b = a.clone();
        assert!(!b.overloaded() && b.store_fault().is_none() && b.retry_dedup_enabled());
        a.set_overload(true);
        a.set_store_fault(Some(StoreFault::Busy));
        a.disable_retry_dedup(true);
        assert!(b.overloaded());
        assert_eq!(b.store_fault(), Some(StoreFault::Busy));
        assert!(!b.retry_dedup_enabled());
        a.set_store_fault(None);
        assert_eq!(b.store_fault(), None);
    }
}
