//! Recording events from the command handlers (the transactional outbox's write side).
//!
//! Call sites: `cmd/join.rs` (JOIN, PART), `core::Core::drop_dialog` (PART caused by
//! BYE, connection close, session expiry), `cmd/grpchat.rs` (CHAT), `cmd/history.rs`
//! (BACKCHAT), `cmd/search.rs` (SEARCH). Nothing is recorded when `[compliance]
//! enabled` is false.
//!
//! The event is written inside the batch's store transaction. If writing it fails, the
//! whole batch is rolled back instead of committed (`Outbox::poison_batch`): its
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
use crate::core::BatchCx;
use crate::store::{LogHead, LogKind, NewLogEntry, OpenSession, Store, StoreError};
use crate::xccos::codes;

/// The event `kind` by `user` in room `guid` (empty: no room) at `ts_ms`, with the
/// room's current URI and name.
pub fn event_at(
    cx: &BatchCx,
    kind: EventKind,
    guid: &str,
    user: &str,
    ts_ms: i64,
    content: &str,
) -> NewEvent {
    let (room_uri, room_name) = cx
        .rooms
        .get(guid)
        .map(|r| (r.uri.clone(), r.attrs.name.clone()))
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
fn write_event(cx: &mut BatchCx, ev: &NewEvent) -> Result<i64, StoreError> {
    let id = cx.store.record_event(ev)?;
    let server = cx.cfg.server_id();
    match ev.kind {
        EventKind::Join => cx.store.open_session(
            server,
            &OpenSession {
                user: ev.user.clone(),
                room_uri: ev.room_uri.clone(),
                room_name: ev.room_name.clone(),
            },
        )?,
        EventKind::Part => cx.store.close_session(server, &ev.user, &ev.room_uri)?,
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
pub fn close_sessions_of_previous_run(cx: &mut BatchCx) -> Result<usize, StoreError> {
    let server = cx.cfg.server_id().to_string();
    let stale = cx.store.open_sessions(&server)?;
    let now = cx.now_ms;
    for s in &stale {
        if cx.cfg.compliance.enabled {
            cx.compliance.carry.push(s.part_event(now));
        } else if let Err(e) = cx.store.close_session(&server, &s.user, &s.room_uri) {
            tracing::warn!("could not clear the open-sessions ledger: {e}");
        }
    }
    Ok(stale.len())
}

/// Records `kind` by `user` in room `guid` now (no-op when compliance is disabled).
/// Errors: 500 (and the batch will roll back) when the store failed.
pub fn record(
    cx: &mut BatchCx,
    kind: EventKind,
    guid: &str,
    user: &str,
    content: &str,
) -> Result<(), CmdError> {
    if !cx.cfg.compliance.enabled {
        return Ok(());
    }
    let ev = event_at(cx, kind, guid, user, cx.now_ms, content);
    write_event(cx, &ev).map(|_| ()).map_err(|e| {
        cx.out.poison_batch();
        CmdError::new(
            codes::INTERNAL_ERROR,
            format!("compliance event not recorded: {e}"),
        )
    })
}

/// Runs the action `f` and records `ev` atomically (one savepoint): both are kept or
/// neither. Without compliance it just runs `f`. Errors: `f`'s, or the event's.
pub fn with_event<T>(
    cx: &mut BatchCx,
    ev: NewEvent,
    f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if !cx.cfg.compliance.enabled {
        return f(&mut *cx.store);
    }
    cx.store.savepoint()?;
    let result = f(&mut *cx.store).and_then(|v| cx.store.record_event(&ev).map(|_| v));
    if cx.store.release_savepoint(result.is_ok()).is_err() {
        cx.out.poison_batch();
    }
    result
}

/// Notes an in-memory effect to undo if the batch does not commit.
pub fn undo_on_abort(cx: &mut BatchCx, undo: Undo) {
    if cx.cfg.compliance.enabled {
        cx.compliance.undo.push(undo);
    }
}

/// Records the PART of a dialog the server dropped (BYE, connection closed, session
/// expiry); if the batch does not commit, the event is recorded in the next one.
pub fn record_part_of_dropped(cx: &mut BatchCx, guid: &str, user: &str) {
    if !cx.cfg.compliance.enabled {
        return;
    }
    let ev = event_at(cx, EventKind::Part, guid, user, cx.now_ms, "");
    if write_event(cx, &ev).is_err() {
        cx.out.poison_batch();
    }
    cx.compliance.server_events.push(ev);
}

/// Start of a batch: records the events carried over from a batch that did not commit.
pub fn begin_batch(cx: &mut BatchCx) {
    let carried = std::mem::take(&mut cx.compliance.carry);
    for ev in &carried {
        if write_event(cx, ev).is_err() {
            cx.out.poison_batch();
        }
    }
    cx.compliance.server_events = carried;
}

/// End of a batch: on success forgets the bookkeeping; otherwise undoes the joins and
/// parts in memory (newest first) and carries the server-originated events over.
pub fn end_batch(cx: &mut BatchCx, committed: bool) {
    let undo = std::mem::take(&mut cx.compliance.undo);
    let events = std::mem::take(&mut cx.compliance.server_events);
    if committed {
        return;
    }
    cx.compliance.carry = events;
    for u in undo.into_iter().rev() {
        match u {
            Undo::Joined(guid, dialog) => {
                if let Some(room) = cx.rooms.get_mut(&guid) {
                    room.joined.remove(&dialog);
                }
            }
            Undo::Parted(guid, dialog, user) => {
                if cx.dialogs().get(dialog).is_some() {
                    if let Some(room) = cx.rooms.get_mut(&guid) {
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
    cx: &BatchCx,
    kind: LogKind,
    guid: &str,
    user: &str,
    dialog: DialogId,
) -> NewLogEntry {
    NewLogEntry {
        head: LogHead {
            room_guid: guid.to_string(),
            origin: cx.cfg.server_id().to_string(),
            dialog: i64::try_from(dialog.0).unwrap_or(0),
            kind,
            user: user.to_string(),
            ts_ms: cx.now_ms,
        },
        msg_id: None,
    }
}

/// Pool member: writes a join or part to the room's log in the batch's transaction
/// (every member, this one included, sends the notices from the log once it is
/// committed: `crate::pool`), and keeps the open-sessions ledger - the pool's record
/// of who is online where, which a survivor closes when this member dies - also when
/// compliance is off (with compliance on, the JOIN/PART events keep it). A store
/// failure rolls the batch back (its replies become 503).
pub fn log_presence(cx: &mut BatchCx, kind: LogKind, guid: &str, user: &str, dialog: DialogId) {
    let entry = pool_entry(cx, kind, guid, user, dialog);
    let mut result = cx.store.log_append(&entry).map(|_| ());
    if result.is_ok() && !cx.cfg.compliance.enabled {
        let ev = event_at(cx, EventKind::Part, guid, user, 0, "");
        let server = cx.cfg.server_id().to_string();
        result = match kind {
            LogKind::Part => cx.store.close_session(&server, user, &ev.room_uri),
            _ => cx.store.open_session(
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
        cx.out.poison_batch();
    }
}
