//! Recording events from the command handlers (the transactional outbox's write side).
//!
//! Call sites: `cmd/join.rs` (JOIN, PART), `core::Core::drop_dialog` (PART caused by
//! BYE, connection close, session expiry), `cmd/grpchat.rs` (CHAT), `cmd/history.rs`
//! (BACKCHAT), `cmd/search.rs` (SEARCH). Nothing is recorded when `[compliance]
//! enabled` is false.
//!
//! The event is written inside the batch's store transaction. If writing it fails, the
//! whole batch is rolled back instead of committed ([`Core::poison_batch`]): its
//! commit-dependent replies become 503, so no acknowledged action lacks its event.

use super::{EventKind, NewEvent};
use crate::cmd::CmdError;
use crate::core::Core;
use crate::store::{Store, StoreError};
use crate::xccos::codes;

/// The event `kind` by `user` in room `guid` (empty: no room) at `ts_ms`, with the
/// room's current URI and name.
pub fn event_at(
    core: &Core,
    kind: EventKind,
    guid: &str,
    user: &str,
    ts_ms: i64,
    content: &str,
) -> NewEvent {
    let (room_uri, room_name) = core
        .rooms
        .get(guid)
        .map(|r| (r.uri.clone(), r.name.clone()))
        .unwrap_or_default();
    NewEvent {
        kind,
        room_uri,
        room_name,
        user: user.to_string(),
        ts_ms,
        content: content.to_string(),
    }
}

/// Records `kind` by `user` in room `guid` now (no-op when compliance is disabled).
/// Errors: 500 (and the batch will roll back) when the store failed.
pub fn record(
    core: &mut Core,
    kind: EventKind,
    guid: &str,
    user: &str,
    content: &str,
) -> Result<(), CmdError> {
    if !core.cfg.compliance.enabled {
        return Ok(());
    }
    let ev = event_at(core, kind, guid, user, core.clock.now_ms(), content);
    core.store.record_event(&ev).map(|_| ()).map_err(|e| {
        core.poison_batch();
        CmdError::new(
            codes::INTERNAL_ERROR,
            format!("compliance event not recorded: {e}"),
        )
    })
}

/// Runs the action `f` and records `ev` atomically (one savepoint): both are kept or
/// neither. Without compliance it just runs `f`. Errors: `f`'s, or the event's.
pub fn with_event<T>(
    core: &mut Core,
    ev: NewEvent,
    f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !core.cfg.compliance.enabled {
        return f(core.store.as_mut());
    }
    core.store.savepoint()?;
    let result = f(core.store.as_mut()).and_then(|v| core.store.record_event(&ev).map(|_| v));
    if core.store.release_savepoint(result.is_ok()).is_err() {
        core.poison_batch();
    }
    result
}
