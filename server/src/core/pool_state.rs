//! The core's state as a pool member (`[store] url` set, docs/pool.md): how far it has
//! relayed each room's log, and when its lease is next renewed. The logic that reads
//! the log and renews the lease is `crate::pool`, called after every batch.

use crate::store::{CommitBell, Store, StoreError};
use std::collections::BTreeMap;

/// A pool member's relay cursors and lease schedule.
#[derive(Debug, Clone, Default)]
pub struct PoolState {
    /// Per room GUID, the last log sequence number relayed to this member's dialogs.
    /// A room not listed starts at 0 (created after this member started).
    pub cursors: BTreeMap<String, i64>,
    /// When the lease is renewed next (ms since the epoch); `Core::poll_timeout`
    /// includes it, so an idle member still renews on time.
    pub next_heartbeat_ms: i64,
    /// Room GUIDs in the log that the store's room list did not have when this member
    /// last loaded it (not looked up again: the list is read only for new GUIDs).
    pub unloadable: std::collections::BTreeSet<String>,
    /// The simulator's pool (members on one SQLite file): the bell its store rings on
    /// committing log entries, which the I/O driver waits on instead of PostgreSQL's
    /// LISTEN (`crate::store::bell`, `net::pool_wake`).
    pub bell: Option<CommitBell>,
}

impl PoolState {
    /// The state of a member starting at `now_ms`: every room's log is taken as relayed
    /// up to its current head (history is read with `bccontext`, not replayed), and the
    /// lease is renewed at once. Errors: the store failed.
    pub fn start(store: &mut dyn Store, now_ms: i64) -> Result<PoolState, StoreError> {
        Ok(PoolState {
            cursors: store.log_heads()?.into_iter().collect(),
            next_heartbeat_ms: now_ms,
            unloadable: Default::default(),
            bell: None,
        })
    }

    /// The last relayed sequence number of room `guid`.
    pub fn cursor(&self, guid: &str) -> i64 {
        self.cursors.get(guid).copied().unwrap_or(0)
    }
}

impl super::Core {
    /// Hands a pool member on a shared SQLite file the [`CommitBell`] its store rings
    /// (the simulator's pool). No-op outside a pool.
    pub fn set_pool_bell(&mut self, bell: CommitBell) {
        if let Some(p) = self.pool.as_mut() {
            p.bell = Some(bell);
        }
    }

    /// The bell set by [`super::Core::set_pool_bell`], if any.
    pub fn pool_bell(&self) -> Option<CommitBell> {
        self.pool.as_ref().and_then(|p| p.bell.clone())
    }
}
