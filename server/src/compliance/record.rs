//! Recording events from the command handlers (the transactional outbox's write side).
//!
//! Call sites: `cmd/join.rs` (JOIN, PART), `core::Core::drop_dialog` (PART caused by
//! BYE, connection close, session expiry), `cmd/grpchat.rs` (CHAT), `cmd/history.rs`
//! (BACKCHAT), `cmd/search.rs` (SEARCH). Nothing is recorded when `[compliance]
//! enabled` is false.
//!
//! The event is written inside the batch's store transaction. If writing it fails, the
//! whole batch is rolled back instead of committed (`Core::poison_batch`): its
//! commit-dependent replies become 503, so no acknowledged action lacks its event.
//!
//! When a batch does not commit, its in-memory joins and parts are undone (the client
//! was answered 503 and retries: its retry must record the event again), and PART events
//! of dialogs the server dropped (BYE, close, expiry: nobody retries those) are carried
//! over and recorded in the next batch.

pub use super::batch::{BatchState, Undo};
use super::{EventKind, NewEvent};
use crate::channel::DialogId;
use crate::cmd::error::CmdError;
use crate::core::Core;
use crate::store::{LogKind, NewLogEntry, OpenSession, Store, StoreError};
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

/// Writes `ev` to the outbox and keeps the open-sessions ledger in step, in the
/// caller's transaction: a JOIN opens (server, user, room), a PART closes it. Returns
/// the event id. Errors: the store failed.
fn write_event(core: &mut Core, ev: &NewEvent) -> Result<i64, StoreError> {
    let id = core.store.record_event(ev)?;
    let server = core.cfg.server_id();
    match ev.kind {
        EventKind::Join => core.store.open_session(
            server,
            &OpenSession {
                user: ev.user.clone(),
                room_uri: ev.room_uri.clone(),
                room_name: ev.room_name.clone(),
            },
        )?,
        EventKind::Part => core.store.close_session(server, &ev.user, &ev.room_uri)?,
        _ => {}
    }
    Ok(id)
}

/// Start-up: closes the sessions a previous run of this server left open because it
/// crashed or was killed (its open-sessions ledger is not empty). Their PART events,
/// stamped now, are carried into the first batch like the PARTs of a batch that did not
/// commit: recorded before anything else, carried again until a batch commits, so a
/// store failure at start-up delays them but cannot lose them. Without compliance the
/// ledger is just emptied (best effort). Returns how many sessions are being closed.
/// Errors: the ledger could not be read (the server must not start half cleaned).
pub fn close_sessions_of_previous_run(core: &mut Core) -> Result<usize, StoreError> {
    let server = core.cfg.server_id().to_string();
    let stale = core.store.open_sessions(&server)?;
    let now = core.now_ms();
    for s in &stale {
        if core.cfg.compliance.enabled {
            core.compliance.carry.push(s.part_event(now));
        } else if let Err(e) = core.store.close_session(&server, &s.user, &s.room_uri) {
            tracing::warn!("could not clear the open-sessions ledger: {e}");
        }
    }
    Ok(stale.len())
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
    let ev = event_at(core, kind, guid, user, core.now_ms(), content);
    write_event(core, &ev).map(|_| ()).map_err(|e| {
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

/// Notes an in-memory effect to undo if the batch does not commit.
pub fn undo_on_abort(core: &mut Core, undo: Undo) {
    if core.cfg.compliance.enabled {
        core.compliance.undo.push(undo);
    }
}

/// Records the PART of a dialog the server dropped (BYE, connection closed, session
/// expiry); if the batch does not commit, the event is recorded in the next one.
pub fn record_part_of_dropped(core: &mut Core, guid: &str, user: &str) {
    if !core.cfg.compliance.enabled {
        return;
    }
    let ev = event_at(core, EventKind::Part, guid, user, core.now_ms(), "");
    if write_event(core, &ev).is_err() {
        core.poison_batch();
    }
    core.compliance.server_events.push(ev);
}

/// Start of a batch: records the events carried over from a batch that did not commit.
pub fn begin_batch(core: &mut Core) {
    let carried = std::mem::take(&mut core.compliance.carry);
    for ev in &carried {
        if write_event(core, ev).is_err() {
            core.poison_batch();
        }
    }
    core.compliance.server_events = carried;
}

/// End of a batch: on success forgets the bookkeeping; otherwise undoes the joins and
/// parts in memory (newest first) and carries the server-originated events over.
pub fn end_batch(core: &mut Core, committed: bool) {
    let undo = std::mem::take(&mut core.compliance.undo);
    let events = std::mem::take(&mut core.compliance.server_events);
    if committed {
        return;
    }
    core.compliance.carry = events;
    for u in undo.into_iter().rev() {
        match u {
            Undo::Joined(guid, dialog) => {
                if let Some(room) = core.rooms.get_mut(&guid) {
                    room.joined.remove(&dialog);
                }
            }
            Undo::Parted(guid, dialog, user) => {
                if core.dialogs.get(dialog).is_some() {
                    if let Some(room) = core.rooms.get_mut(&guid) {
                        room.joined.insert(dialog, user);
                    }
                }
            }
        }
    }
}

/// Pool member (`[store] url`): the log entry for `kind` by `user` in room `guid`,
/// caused by `dialog` (`DialogId::MAX`: none), written by this member now.
pub fn pool_entry(
    core: &Core,
    kind: LogKind,
    guid: &str,
    user: &str,
    dialog: DialogId,
) -> NewLogEntry {
    NewLogEntry {
        room_guid: guid.to_string(),
        origin: core.cfg.server_id().to_string(),
        dialog: i64::try_from(dialog.0).unwrap_or(0),
        kind,
        user: user.to_string(),
        ts_ms: core.now_ms(),
        msg_id: None,
    }
}

/// Pool member: writes a join or part to the room's log in the batch's transaction
/// (every member, this one included, sends the notices from the log once it is
/// committed: `crate::pool`), and keeps the open-sessions ledger - the pool's record
/// of who is online where, which a survivor closes when this member dies - also when
/// compliance is off (with compliance on, the JOIN/PART events keep it). A store
/// failure rolls the batch back (its replies become 503).
pub fn log_presence(core: &mut Core, kind: LogKind, guid: &str, user: &str, dialog: DialogId) {
    let entry = pool_entry(core, kind, guid, user, dialog);
    let mut result = core.store.log_append(&entry).map(|_| ());
    if result.is_ok() && !core.cfg.compliance.enabled {
        let ev = event_at(core, EventKind::Part, guid, user, 0, "");
        let server = core.cfg.server_id().to_string();
        result = match kind {
            LogKind::Part => core.store.close_session(&server, user, &ev.room_uri),
            _ => core.store.open_session(
                &server,
                &OpenSession {
                    user: ev.user,
                    room_uri: ev.room_uri,
                    room_name: ev.room_name,
                },
            ),
        };
    }
    if let Err(e) = result {
        tracing::warn!(
            "pool: {} of {user} not logged, batch rolled back: {e}",
            kind.as_str()
        );
        core.poison_batch();
    }
}
