//! A pool of servers on one store (`[store] url`, docs/pool.md): every member relays
//! every post, join and part, and a survivor closes the sessions of a member that died.
//!
//! **Relays come from the store's log.** A member writes a post, join or part into its
//! room's log (`Store::log_append`) in the batch's transaction; the room's row lock
//! makes the room's sequence numbers commit in order. After every batch
//! ([`after_batch`]) each member reads every room's head (`Store::log_heads`) and
//! relays the entries past its cursor to its own dialogs joined to the room, in
//! sequence order - its own posts too (not to the posting dialog), so every member
//! sends one room's messages in one order, the store's commit order, each once. A
//! member that crashes right after a commit loses no relay: the others read the log.
//! On PostgreSQL a trigger notifies `pchat_pool` on commit and the I/O driver turns
//! the notification into a batch (`net::pool_wake`), so relays do not wait for a tick.
//!
//! **Leases.** Every `[pool] lease_s / 3` a member renews its lease
//! (`Store::lease_renew`) and looks for members whose lease ended. For each, in one
//! transaction, it claims the lease (`Store::lease_claim`: exactly one claimant) and
//! closes the dead member's open sessions (the open-sessions ledger): a PART event
//! each (with compliance on), the ledger entry removed, a `part` log entry - from
//! which every member sends `ntc:part`. So the PARTs come within `lease_s` plus one
//! renewal period of the death, once.

use crate::channel::{DialogId, Room};
use crate::clock::iso8601;
use crate::core::pool_state::PoolState;
use crate::core::BatchCx;
use crate::store::{LogEntry, LogHead, LogKind, NewLogEntry, StoreError};
use crate::xccos::{Body, GrpChat, Ntc, NtcData};

/// Most log entries read per room and query.
const FETCH: u32 = 512;

/// After every batch of a pool member (after its commit): renews the lease when due
/// (closing dead members' sessions), then relays the log entries committed since the
/// last batch. A store failure is logged and retried after the next batch. Called
/// only in a pool (`dispatch.rs`).
pub(crate) fn after_batch(cx: &mut BatchCx, pool: &mut PoolState) {
    if cx.now_ms >= pool.next_heartbeat_ms {
        heartbeat(cx, pool);
    }
    if let Err(e) = relay_log(cx, pool) {
        tracing::warn!("pool: reading the log failed (retried after the next batch): {e}");
    }
}

/// Relays every room's new log entries to this member's dialogs, in order.
fn relay_log(cx: &mut BatchCx, pool: &mut PoolState) -> Result<(), StoreError> {
    let heads = cx.store.log_heads()?;
    load_new_rooms(cx, pool, &heads)?;
    for (guid, head) in heads {
        let mut cursor = pool.cursor(&guid);
        while cursor < head {
            let entries = cx.store.log_after(&guid, cursor, FETCH)?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                break;
            };
            for e in &entries {
                deliver(cx, e);
            }
            cursor = last;
            pool.cursors.insert(guid.clone(), cursor);
        }
    }
    Ok(())
}

/// Rooms another member created after this one started (their GUIDs are in the log
/// heads but not in `cx.rooms`): read from the store's room list and added, so this
/// member's users find them, join them and get their relays. A GUID the list does not
/// have is remembered and not looked up again.
fn load_new_rooms(
    cx: &mut BatchCx,
    pool: &mut PoolState,
    heads: &[(String, i64)],
) -> Result<(), StoreError> {
    let unknown = |cx: &BatchCx, pool: &PoolState, g: &String| {
        cx.rooms.get(g).is_none() && !pool.unloadable.contains(g)
    };
    if !heads.iter().any(|(g, _)| unknown(cx, pool, g)) {
        return Ok(());
    }
    for rec in cx.store.load_rooms()? {
        if cx.rooms.get(&rec.guid).is_none() {
            tracing::info!(room = %rec.attrs.name, "pool: a room created on another member, loaded");
            let room = Room::from_record(&cx.cfg.domain, &rec);
            cx.rooms.upsert(room);
        }
    }
    let missing: Vec<String> = heads
        .iter()
        .filter(|(g, _)| unknown(cx, pool, g))
        .map(|(g, _)| g.clone())
        .collect();
    pool.unloadable.extend(missing);
    Ok(())
}

/// Sends one log entry to this member's dialogs joined to its room (not to the dialog
/// that caused it), and for a post `ntc:newcontent` to this member's followers not in
/// the room. These are of committed rows: they do not wait for a commit.
fn deliver(cx: &mut BatchCx, e: &LogEntry) {
    if cx.rooms.get(&e.head.room_guid).is_none() {
        return;
    }
    if e.head.kind == LogKind::Room {
        // This member's own updates are in its rooms already (and notified).
        if e.head.origin != cx.cfg.server_id() {
            crate::cmd::manage::apply_committed_update(cx, &e.head.room_guid);
        }
        return;
    }
    if e.head.kind == LogKind::Join
        && e.head.origin != cx.cfg.server_id()
        && !cx.dialogs().sessions_of(&e.head.user).is_empty()
    {
        // A join on another member follows the room (cmd/join.rs): the user's dialogs
        // here are told of its new content from now on.
        cx.rooms.follows_mut().add(&e.head.user, &e.head.room_guid);
    }
    if e.head.kind == LogKind::Chat {
        // This member's followers online but not in the room, whoever took the post.
        crate::cmd::newcontent::notify_committed(cx, &e.head.room_guid);
    }
    let Some(room) = cx.rooms.get(&e.head.room_guid) else {
        return;
    };
    let except = if e.head.origin == cx.cfg.server_id() {
        DialogId(u64::try_from(e.head.dialog).unwrap_or(u64::MAX))
    } else {
        DialogId::MAX
    };
    let targets = room.joined_except(except);
    let chan_uri = room.uri.clone();
    if targets.is_empty() {
        if e.head.kind == LogKind::Chat {
            cx.count_post(0);
        }
        return;
    }
    let body = match e.head.kind {
        LogKind::Chat => Body::GrpChat(GrpChat {
            msgid: None,
            seqid: 1,
            chan_uri,
            author: Some(e.head.user.clone()),
            ts: Some(iso8601(e.head.ts_ms)),
            text: e.text.clone(),
        }),
        LogKind::Join | LogKind::BJoin => Body::Ntc(Ntc {
            id: if e.head.kind == LogKind::BJoin {
                "ntc:bjoin"
            } else {
                "ntc:join"
            }
            .to_string(),
            data: NtcData::Join {
                user: e.head.user.clone(),
                domain: cx.cfg.domain.clone(),
                room_guid: e.head.room_guid.clone(),
            },
        }),
        LogKind::Part => Body::Ntc(Ntc {
            id: "ntc:part".to_string(),
            data: NtcData::Part {
                chan_uri,
                user: e.head.user.clone(),
            },
        }),
        LogKind::Room => return,
    };
    let body = cx.out.encode_envelope(body);
    let mut sent = 0;
    for d in targets {
        if cx.out.send_info(d, body.clone(), false) {
            sent += 1;
        }
    }
    if e.head.kind == LogKind::Chat {
        cx.count_post(sent);
    }
}

/// Renews this member's lease and closes the sessions of members whose lease ended.
fn heartbeat(cx: &mut BatchCx, pool: &mut PoolState) {
    let me = cx.cfg.server_id().to_string();
    let now = cx.now_ms;
    let lease_ms = i64::from(cx.cfg.pool.lease_s) * 1000;
    pool.next_heartbeat_ms = now + (lease_ms / 3).max(1000);
    if let Err(e) = cx.store.lease_renew(&me, now + lease_ms) {
        tracing::warn!("pool: lease not renewed: {e}");
        return;
    }
    let dead = match cx.store.lease_expired(now) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("pool: leases not read: {e}");
            return;
        }
    };
    for member in dead.into_iter().filter(|m| *m != me) {
        match take_over(cx, &member, now) {
            Ok(Some(n)) => tracing::info!(
                member = %member,
                "pool: member's lease ended; closed its {n} open session(s)"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(member = %member, "pool: take-over failed, retried: {e}"),
        }
    }
}

/// Claims dead `member` and closes its open sessions, in one transaction. `None`:
/// another survivor claimed it first.
fn take_over(cx: &mut BatchCx, member: &str, now: i64) -> Result<Option<usize>, StoreError> {
    cx.store.begin()?;
    match close_sessions_of(cx, member, now) {
        Ok(n) => {
            cx.store.commit()?;
            Ok(n)
        }
        Err(e) => {
            cx.store.rollback();
            Err(e)
        }
    }
}

fn close_sessions_of(
    cx: &mut BatchCx,
    member: &str,
    now: i64,
) -> Result<Option<usize>, StoreError> {
    if !cx.store.lease_claim(member, now)? {
        return Ok(None);
    }
    let sessions = cx.store.open_sessions(member)?;
    for s in &sessions {
        if cx.cfg.compliance.enabled {
            cx.store.record_event(&s.part_event(now))?;
        }
        cx.store.close_session(member, &s.user, &s.room_uri)?;
        // Signed in again on another member and back in the room: no `ntc:part`
        // (the room would take a present user for gone).
        if cx.store.room_sessions(&s.room_uri)?.contains(&s.user) {
            continue;
        }
        if let Some((_, guid)) = crate::ids::split_room_uri(&s.room_uri) {
            cx.store
                .log_append(&part_entry(guid, member, s.user.clone(), now))?;
        }
    }
    Ok(Some(sessions.len()))
}

/// The `part` log entry, written by `origin` at `ts_ms`, that closes a session of `user`
/// in room `guid` whose member is gone (no dialog caused it).
fn part_entry(guid: &str, origin: &str, user: String, ts_ms: i64) -> NewLogEntry {
    NewLogEntry {
        head: LogHead {
            room_guid: guid.to_string(),
            origin: origin.to_string(),
            dialog: 0,
            kind: LogKind::Part,
            user,
            ts_ms,
        },
        msg_id: None,
    }
}

/// Start-up of a pool member: the sessions its previous run left open (it was killed
/// and restarted before its lease ended, so no survivor closed them) get a `part` log
/// entry each, so every member sends `ntc:part` for them. The ledger itself is closed
/// with the PART events by `compliance::record::close_sessions_of_previous_run`.
/// Store failures are logged, not fatal: the notices are best effort.
pub(crate) fn log_parts_of_previous_run(cx: &mut BatchCx) {
    let me = cx.cfg.server_id().to_string();
    let now = cx.now_ms;
    let stale = match cx.store.open_sessions(&me) {
        Ok(s) => s,
        Err(e) => return tracing::warn!("pool: open sessions not read: {e}"),
    };
    for s in stale {
        let Some((_, guid)) = crate::ids::split_room_uri(&s.room_uri) else {
            continue;
        };
        let entry = part_entry(guid, &me, s.user, now);
        if let Err(e) = cx.store.log_append(&entry) {
            tracing::warn!("pool: part of a previous run's session not logged: {e}");
        }
    }
}
