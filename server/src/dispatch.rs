//! The top of the protocol stack: builds the [`Core`] with the handlers it calls up
//! into - XCCOS commands (`cmd`), the web services' core side (`web::ops`) and the
//! compliance bookkeeping (`compliance::record`). `core` itself imports none of them
//! (ARCHITECTURE.md, "Layers"): it calls them through [`crate::core::Hooks`], filled
//! here.

use crate::channel::DialogId;
use crate::clock::Clock;
use crate::compliance::record;
use crate::config::Config;
use crate::core::pool_state::PoolState;
use crate::core::{BatchCx, Core, Hooks};
use crate::fault::Faults;
use crate::store::{Store, StoreError};
use std::sync::Arc;

/// The handlers of a real server (and of the simulator and the tests: there is no other).
const HOOKS: Hooks = Hooks {
    xccos: crate::cmd::on_xccos,
    http: crate::web::ops::handle,
    left_room,
    begin_batch: record::begin_batch,
    end_batch,
};

/// End of a batch: the compliance bookkeeping, then, in a pool, the relays from the
/// store's log and the lease (`crate::pool`).
fn end_batch(cx: &mut BatchCx, pool: Option<&mut PoolState>, committed: bool) {
    record::end_batch(cx, committed);
    if let Some(pool) = pool {
        crate::pool::after_batch(cx, pool);
    }
}

/// A dialog the server dropped (BYE, close, expiry) was `user`'s last in room `guid`:
/// the PART event, then `ntc:part` to the others.
fn left_room(cx: &mut BatchCx, guid: &str, user: &str, dialog: DialogId) {
    record::record_part_of_dropped(cx, guid, user);
    crate::cmd::join::notify_part(cx, guid, user, dialog);
}

impl Core {
    /// Builds the core: creates or updates the rooms of `cfg` in `store` (their GUID is
    /// derived from domain + name, so URIs are stable; the config wins over changes made
    /// over XCCOS to those rooms), then loads every room and the categories of `cfg`.
    /// `seed` seeds every identifier the core mints; `local_addr` (`host:port`) goes into
    /// Via and Contact; `faults` is the handle shared with the simulator
    /// (`Faults::default()`: none). Before returning it closes the sessions a crashed
    /// previous run of this server (`[pool] server_id`) left open: their PART events are
    /// recorded (compliance/record.rs, `close_sessions_of_previous_run`). Errors: the
    /// store failed.
    pub fn new(
        cfg: Config,
        store: Box<dyn Store>,
        clock: Arc<dyn Clock>,
        seed: u64,
        local_addr: &str,
        faults: Faults,
    ) -> Result<Core, StoreError> {
        let crash_cleanup = faults.crash_cleanup_enabled();
        let mut core = Core::assemble(cfg, store, clock, seed, local_addr, faults, HOOKS)?;
        if crash_cleanup {
            let mut cx = core.cx();
            if cx.cfg.pooled() {
                crate::pool::log_parts_of_previous_run(&mut cx);
            }
            let closed = record::close_sessions_of_previous_run(&mut cx)?;
            if closed > 0 {
                tracing::info!(
                    server = cx.cfg.server_id(),
                    "closing {closed} session(s) left open by a previous run (crash): PART events go into the first batch"
                );
            }
        }
        Ok(core)
    }
}
