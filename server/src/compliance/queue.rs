//! The outbox reader (the seed's "private message queue" step): moves events from the
//! store's outbox into the compliance database, idempotently.
//!
//! Order per round: read up to `limit` outbox events; `INSERT OR IGNORE` them into
//! mgccomp and commit; only then delete them from the outbox. A crash between the two
//! commits leaves the events in both places; the next round inserts nothing new (keyed
//! by event id) and deletes them from the outbox. The worker always moves before it
//! exports, so an event that is still in the outbox is still in mgccomp too.

use super::{at, ComplianceDb, Fault, FaultHook, FaultPoint, WorkerError};
use crate::store::Store;

/// Moves outbox events into `db`, `limit` per round, at most `max_rounds` rounds (so a
/// huge backlog does not hold the worker forever). Returns how many events left the
/// outbox. Errors: store or mgccomp failures (nothing is lost: the round is redone),
/// [`WorkerError::Halted`] from the fault hook.
pub fn move_outbox(
    store: &mut dyn Store,
    db: &mut ComplianceDb,
    limit: u32,
    max_rounds: u32,
    hook: Option<&FaultHook>,
) -> Result<usize, WorkerError> {
    let mut moved = 0;
    for _ in 0..max_rounds {
        let events = store.outbox_peek(limit.max(1))?;
        if events.is_empty() {
            break;
        }
        db.insert_events(&events)?;
        halt_at(hook, FaultPoint::AfterMove)?;
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        store.outbox_delete(&ids)?;
        moved += ids.len();
        halt_at(hook, FaultPoint::AfterOutboxDelete)?;
    }
    Ok(moved)
}

/// `Err(Halted)` if the hook halts at `point` (other faults do not apply here).
pub(crate) fn halt_at(hook: Option<&FaultHook>, point: FaultPoint) -> Result<(), WorkerError> {
    match at(hook, point) {
        Fault::Halt => Err(WorkerError::Halted),
        Fault::Continue | Fault::FailAdapter => Ok(()),
    }
}
