//! The compliance worker: a task beside the channel service (see `crate::host`) that
//! every `run_interval` moves the outbox into the compliance database
//! ([`super::queue`]) and exports batches through the adapter.
//!
//! One run ([`Worker::run_once`]) is synchronous - store, mgccomp and file calls run
//! inline on the calling task (in the simulator, the host's task; DESIGN.md) - and
//! bounded: at most [`MAX_ROUNDS`] move rounds and [`MAX_BATCHES`] batches.
//!
//! Export, per batch: deliver the oldest pending batch if there is one (a run cut short
//! by a crash or an adapter failure), else record a new one (id and events committed
//! in mgccomp *before* the adapter runs); deliver it; on success delete its events and
//! mark it done in one transaction. A failed delivery leaves the batch pending; the
//! next run delivers the same batch again.
//!
//! **In a pool** (docs/pool.md) the members share the outbox and the compliance
//! database, and only one worker exports at a time: before each run a member's worker
//! takes or renews the pool's compliance lease ([`crate::store::COMPLIANCE_ROLE`],
//! `[pool] lease_s`, [`Store::role_lease`]) and skips the run if another member holds
//! it; at its stop it runs once more if it can take the lease, then gives it up. When
//! the holder dies, a survivor's worker takes the lease over once it ends. (A run lasts
//! far less than a lease: a holder stalled for longer than `lease_s` in mid-run could
//! overlap with its successor.)

use super::adapter::{Adapter, AdapterError, FileAdapter};
use super::queue::{halt_at, move_outbox};
use super::{ComplianceDb, FaultHook, FaultPoint};
use crate::clock::Clock;
use crate::config::{AdapterKind, ComplianceConfig};
use crate::store::{SqliteStore, Store, StoreError, COMPLIANCE_ROLE};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// Most outbox move rounds (of `batch_size` events) per run.
pub const MAX_ROUNDS: u32 = 64;
/// Most batches exported per run.
pub const MAX_BATCHES: u32 = 64;

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store or the compliance database failed; the run is redone next interval.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The adapter did not confirm a batch; it stays pending and is retried.
    #[error("batch {batch}: {source}")]
    Adapter {
        /// Batch id.
        batch: u64,
        /// What the adapter said.
        source: AdapterError,
    },
    /// A test's fault hook halted the worker (simulated process death).
    #[error("halted by fault hook")]
    Halted,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Events moved from the outbox to the compliance database.
    pub moved: usize,
    /// Batches the adapter confirmed.
    pub batches: usize,
    /// Events in those batches.
    pub exported: usize,
}

/// The compliance worker: its own store connection (the outbox), the compliance
/// database, the adapter.
pub struct Worker {
    store: Box<dyn Store>,
    db: ComplianceDb,
    adapter: Box<dyn Adapter>,
    batch_size: u32,
    interval: Duration,
    hook: Option<FaultHook>,
    /// In a pool: the compliance lease this worker must hold to run.
    lease: Option<PoolLease>,
}

/// A pool member's claim on the pool's one exporting worker ([`Worker::in_pool`]).
struct PoolLease {
    /// `[pool] server_id` of the member.
    holder: String,
    /// `[pool] lease_s`, in ms.
    lease_ms: i64,
    /// The member's clock (ms since the epoch; the lease is compared across members).
    clock: Option<std::sync::Arc<dyn Clock>>,
}

/// The adapter `cfg` names, writing into `cfg.output_dir`.
pub fn adapter_for(cfg: &ComplianceConfig) -> Box<dyn Adapter> {
    let format: Box<dyn super::adapter::Format> = match cfg.adapter {
        AdapterKind::Xml => Box::new(super::xml::Xml),
        AdapterKind::Jsonl => Box::new(super::jsonl::Jsonl),
    };
    Box::new(FileAdapter::new(
        cfg.output_dir.clone(),
        format,
        cfg.one_room_per_file,
    ))
}

impl Worker {
    /// A worker over `store` (a connection of its own to the store holding the outbox),
    /// the compliance database `db` and `adapter`; `cfg` gives batch size and interval;
    /// `hook` is for tests (None in production).
    pub fn new(
        store: Box<dyn Store>,
        db: ComplianceDb,
        adapter: Box<dyn Adapter>,
        cfg: &ComplianceConfig,
        hook: Option<FaultHook>,
    ) -> Worker {
        Worker {
            store,
            db,
            adapter,
            batch_size: cfg.batch_size.max(1),
            interval: Duration::from_millis(cfg.run_interval.0.max(1)),
            hook,
            lease: None,
        }
    }

    /// This worker as pool member `holder`'s: it runs only while it holds the pool's
    /// compliance lease, of `lease_s` seconds (module docs). The clock comes from the
    /// host ([`Worker::with_clock`]); without one the worker never runs.
    pub fn in_pool(mut self, holder: &str, lease_s: u32) -> Worker {
        self.lease = Some(PoolLease {
            holder: holder.to_string(),
            lease_ms: i64::from(lease_s.max(1)) * 1000,
            clock: None,
        });
        self
    }

    /// The clock a pool member's worker reads its lease times from (the core's).
    /// No-op outside a pool.
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Worker {
        if let Some(l) = self.lease.as_mut() {
            l.clock = Some(clock);
        }
        self
    }

    /// Whether this worker may run now: always outside a pool; in a pool, if it took
    /// or renewed the compliance lease.
    fn hold_lease(&mut self) -> bool {
        let Some(l) = &self.lease else {
            return true;
        };
        let Some(clock) = &l.clock else {
            return false;
        };
        let now = clock.now_ms();
        let until = now.saturating_add(l.lease_ms);
        match self
            .store
            .role_lease(COMPLIANCE_ROLE, &l.holder, (now, until))
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!("compliance lease not taken, run skipped: {e}");
                false
            }
        }
    }

    /// Gives the compliance lease up (a stopping pool member's worker).
    fn release_lease(&mut self) {
        if let Some(l) = &self.lease {
            if let Err(e) = self.store.role_release(COMPLIANCE_ROLE, &l.holder) {
                tracing::warn!("compliance lease not released (it ends by itself): {e}");
            }
        }
    }

    /// Opens the worker for a server whose store is the SQLite file `store_path`:
    /// a second connection to it, the compliance database at `cfg.path`, the adapter
    /// `cfg.adapter` into `cfg.output_dir`. Errors: either database failed to open.
    pub fn open(
        cfg: &ComplianceConfig,
        store_path: &Path,
        hook: Option<FaultHook>,
    ) -> Result<Worker, StoreError> {
        if store_path.as_os_str() == ":memory:" {
            return Err(StoreError::Db(
                "compliance needs a store file ([store] path), not :memory:".into(),
            ));
        }
        let store = SqliteStore::open(store_path)?;
        let db = ComplianceDb::open(&cfg.path)?;
        Ok(Worker::new(
            Box::new(store),
            db,
            adapter_for(cfg),
            cfg,
            hook,
        ))
    }

    /// One run: move the outbox, then export batches until none is left (bounded, see
    /// the module docs). Errors: see [`WorkerError`]; nothing is lost on any of them.
    pub fn run_once(&mut self) -> Result<RunReport, WorkerError> {
        let hook = self.hook.as_ref();
        let mut report = RunReport {
            moved: move_outbox(
                self.store.as_mut(),
                &mut self.db,
                self.batch_size,
                MAX_ROUNDS,
                hook,
            )?,
            ..RunReport::default()
        };
        for _ in 0..MAX_BATCHES {
            let batch = match self.db.pending_batch()? {
                Some(b) => b,
                None => match self.db.new_batch(self.batch_size)? {
                    Some(b) => {
                        halt_at(hook, FaultPoint::AfterBatchRecorded)?;
                        b
                    }
                    None => break,
                },
            };
            match self.adapter.deliver(&batch, hook) {
                Ok(()) => {}
                Err(AdapterError::Halted) => return Err(WorkerError::Halted),
                Err(source) => {
                    return Err(WorkerError::Adapter {
                        batch: batch.id,
                        source,
                    })
                }
            }
            self.db.finish_batch(batch.id)?;
            report.batches += 1;
            report.exported += batch.events.len();
            halt_at(hook, FaultPoint::AfterBatchDone)?;
        }
        Ok(report)
    }

    /// Runs every `run_interval` (first run at once: recovery after a restart) until
    /// `shutdown` resolves, then runs once more so that what was committed before
    /// shutdown is exported. Stops for good if the fault hook halts it. Uses tokio time
    /// only (simulated under turmoil).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    if self.hold_lease() && !self.run_logged() {
                        return;
                    }
                }
            }
        }
        if self.hold_lease() {
            self.run_logged();
        }
        self.release_lease();
        tracing::info!(adapter = self.adapter.name(), "compliance worker stopped");
    }

    /// One run with logging; `false` if the worker was halted.
    fn run_logged(&mut self) -> bool {
        match self.run_once() {
            Ok(r) => {
                if r.moved > 0 || r.batches > 0 {
                    tracing::info!(
                        moved = r.moved,
                        batches = r.batches,
                        exported = r.exported,
                        adapter = self.adapter.name(),
                        "compliance run"
                    );
                }
                true
            }
            Err(WorkerError::Halted) => {
                tracing::warn!("compliance worker halted by fault hook");
                false
            }
            Err(e) => {
                tracing::warn!("compliance run failed, retried next interval: {e}");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    /// Two members' workers on one store file: only the lease holder runs; the other
    /// takes over when the holder's lease ended, or at once when it released it.
    #[test]
    fn one_worker_of_the_pool_holds_the_compliance_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store_path = dir.path().join("pchat.db");
        let mut cfg = ComplianceConfig::default();
        (cfg.enabled, cfg.path) = (true, dir.path().join("mgccomp.db"));
        cfg.output_dir = dir.path().join("out");
        let clock = Arc::new(ManualClock::new(1_000_000));
        let worker = |member: &str| {
            Worker::open(&cfg, &store_path, None)
                .unwrap()
                .in_pool(member, 15)
                .with_clock(clock.clone())
        };
        let (mut m1, mut m2) = (worker("m1"), worker("m2"));
        assert!(
            !Worker::open(&cfg, &store_path, None)
                .unwrap()
                .in_pool("m3", 15)
                .hold_lease(),
            "no clock, no run"
        );
        assert!(m1.hold_lease(), "free: m1 takes it");
        assert!(!m2.hold_lease(), "m1's lease runs");
        clock.advance(10_000);
        assert!(m1.hold_lease(), "m1 renews");
        clock.advance(14_000);
        assert!(!m2.hold_lease(), "renewed 14 s ago");
        clock.advance(2_000);
        assert!(m2.hold_lease(), "m1 silent for 16 s: m2 takes over");
        assert!(!m1.hold_lease());
        m2.release_lease();
        assert!(m1.hold_lease(), "released: m1 at once");
        let mut single = Worker::open(&cfg, &store_path, None).unwrap();
        assert!(single.hold_lease(), "outside a pool a worker always runs");
    }
}
