//! The simulator's stand-in for PostgreSQL's `NOTIFY pchat_pool` (docs/pool.md): pool
//! members that share one SQLite file (`[pool]` in a pchat-sim scenario) share one
//! [`CommitBell`]. Each member's store is a [`HookedStore`](super::HookedStore) with a
//! [`BellHook`], which rings the bell when a transaction that wrote a room's log
//! commits (or when a log entry is written outside a transaction); every member's I/O
//! driver waits on the bell and wakes its core with a tick (`net::pool_wake`), as the
//! LISTEN thread does on PostgreSQL.
//!
//! Deterministic under turmoil: the members run on one thread, a ring only marks the
//! waiting tasks ready, and turmoil polls hosts in a fixed order.

use super::{StoreError, StoreHook, StoreOp};
use crate::fault::Faults;
use tokio::sync::watch;

/// A counter every ring increases; members wait for it to change. Cheap to clone (all
/// clones are one bell).
#[derive(Debug, Clone)]
pub struct CommitBell(std::sync::Arc<watch::Sender<u64>>);

impl Default for CommitBell {
    fn default() -> Self {
        CommitBell(std::sync::Arc::new(watch::channel(0).0))
    }
}

impl CommitBell {
    /// Rings: every subscriber's `changed()` resolves.
    pub fn ring(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees the rings from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// How often the bell rang so far.
    pub fn rings(&self) -> u64 {
        *self.0.borrow()
    }
}

/// A [`StoreHook`] that fails calls as its [`Faults`] say (like the simulator's
/// `FaultyStore`) and rings `bell` when a transaction that wrote the pool's log
/// commits, or right at a log write outside a transaction (autocommit).
#[derive(Debug, Clone)]
pub struct BellHook {
    faults: Faults,
    bell: CommitBell,
    in_tx: bool,
    wrote_log: bool,
}

impl BellHook {
    /// A hook failing calls per `faults` and ringing `bell`.
    pub fn new(faults: Faults, bell: CommitBell) -> BellHook {
        BellHook {
            faults,
            bell,
            in_tx: false,
            wrote_log: false,
        }
    }
}

impl StoreHook for BellHook {
    fn before(&mut self, op: StoreOp) -> Result<(), StoreError> {
        self.faults.before(op)?;
        match op {
            StoreOp::Begin => {
                self.in_tx = true;
                self.wrote_log = false;
            }
            // Outside a transaction the write commits by itself; the others run only
            // after this synchronous call returned, so they find the entry.
            StoreOp::LogWrite if !self.in_tx => self.bell.ring(),
            StoreOp::LogWrite => self.wrote_log = true,
            _ => {}
        }
        Ok(())
    }

    fn committed(&mut self) {
        if std::mem::take(&mut self.wrote_log) {
            self.bell.ring();
        }
        self.in_tx = false;
    }

    fn rolled_back(&mut self) {
        self.in_tx = false;
        self.wrote_log = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{HookedStore, LogHead, LogKind, NewLogEntry, SqliteStore, Store};

    fn entry() -> NewLogEntry {
        NewLogEntry {
            head: LogHead {
                room_guid: "g".into(),
                origin: "m1".into(),
                dialog: 1,
                kind: LogKind::Chat,
                user: "sip:a@contoso.com".into(),
                ts_ms: 1,
            },
            msg_id: None,
        }
    }

    fn store(bell: &CommitBell) -> HookedStore<BellHook> {
        let mut inner = SqliteStore::in_memory().expect("in-memory store");
        let room = crate::store::suite_tests::room("g", "R");
        inner.upsert_room(&room).expect("room");
        let hook = BellHook::new(Faults::default(), bell.clone());
        HookedStore::new(Box::new(inner), hook)
    }

    #[test]
    fn rings_once_per_committed_transaction_that_wrote_the_log() {
        let bell = CommitBell::default();
        let mut s = store(&bell);
        s.begin().expect("begin");
        s.lease_renew("m1", 10).expect("write, not the log");
        s.commit().expect("commit");
        assert_eq!(bell.rings(), 0, "no log write, no ring");
        s.begin().expect("begin");
        s.log_append(&entry()).expect("log");
        s.log_append(&entry()).expect("log");
        assert_eq!(bell.rings(), 0, "not before the commit");
        s.commit().expect("commit");
        assert_eq!(bell.rings(), 1);
        s.begin().expect("begin");
        s.log_append(&entry()).expect("log");
        s.rollback();
        assert_eq!(bell.rings(), 1, "a rolled back log write rings nobody");
        s.log_append(&entry()).expect("autocommit");
        assert_eq!(
            bell.rings(),
            2,
            "a write outside a transaction rings at once"
        );
    }
}
