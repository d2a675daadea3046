//! `cmd:join`, `cmd:bjoin`, `cmd:part` and the `ntc:join` / `ntc:bjoin` / `ntc:part`
//! notices they cause (call-flows.md sign-in step 5, find-a-room step 2; XCCOS.md
//! "rpl:join / rpl:bjoin", "Notices").
//!
//! `join` also follows the room (the followed list lives on the server so that every
//! client of the user sees it); `part` unfollows it. `bjoin` joins the listed rooms
//! without changing the followed list.

use super::{room_for, CmdError, CmdResult, Ctx};
use crate::channel::DialogId;
use crate::compliance::record::{log_presence, record, undo_on_abort, Undo};
use crate::compliance::EventKind;
use crate::core::BatchCx;
use crate::store::LogKind;
use crate::xccos::elem::{chanref_elem, Elem};
use crate::xccos::{codes, Body, ChanRef, Ntc, NtcData, RoomInfo, RplData, UserRef};
use std::collections::BTreeMap;

command! {
    /// `cmd:join`: `<data><chanid key="0" domain="D" value="G"/></data>` (or a `chanib`).
    Join ["cmd:join"] -> "rpl:join" {
        /// The room to join.
        pub chan: ChanRef,
    }
    parse(p, data) { Ok(Join { chan: p.first_chanref(p.data(data)?)? }) }
    data(self) { Elem::data([chanref_elem(&self.chan)]) }
    apply(self, cx, ctx) { join(cx, ctx, std::slice::from_ref(&self.chan), false) }
}

command! {
    /// `cmd:bjoin`: `<data>` with several `chanid` (or `chanib`) elements, in order; at
    /// least one.
    BJoin ["cmd:bjoin"] -> "rpl:bjoin" {
        /// The rooms to join, in document order.
        pub chans: Vec<ChanRef>,
    }
    parse(p, data) {
        let d = p.data(data)?;
        let chans = d
            .children
            .iter()
            .filter(|c| c.name == "chanib" || c.name == "chanid")
            .enumerate()
            .map(|(pos, c)| p.chanref(c, pos))
            .collect::<Result<Vec<_>, _>>()?;
        if chans.is_empty() {
            return Err(p.bad("missing chanid or chanib in data"));
        }
        Ok(BJoin { chans })
    }
    data(self) { Elem::data(self.chans.iter().map(chanref_elem)) }
    apply(self, cx, ctx) { join(cx, ctx, &self.chans, true) }
}

command! {
    /// `cmd:part`: `<data><chanib uri="ma-chan://…"/></data>` (or a `chanid`).
    Part ["cmd:part"] -> "rpl:part" {
        /// The room to leave.
        pub chan: ChanRef,
    }
    parse(p, data) { Ok(Part { chan: p.first_chanref(p.data(data)?)? }) }
    data(self) { Elem::data([chanref_elem(&self.chan)]) }
    apply(self, cx, ctx) { part(cx, ctx, &self.chan) }
}

/// Joins the dialog to each named room it may enter. A single `join` that is refused
/// answers the refusal (404/403); a `bjoin` answers 200 with the rooms it could join and
/// leaves the others out (an error only if it joined none).
pub fn join(cx: &mut BatchCx, ctx: &Ctx, chans: &[ChanRef], batch: bool) -> CmdResult {
    let mut joined = Vec::new();
    let mut first_err = None;
    for chan in chans {
        match room_for(cx, &ctx.user, chan) {
            Ok(room) => {
                if !joined.contains(&room.guid) {
                    joined.push(room.guid.clone());
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if joined.is_empty() {
        return Err(first_err.unwrap_or_else(|| CmdError::new(codes::BAD_REQUEST, "no room named")));
    }
    if !batch {
        for guid in &joined {
            cx.store
                .follow(&ctx.user, guid)
                .map_err(|e| CmdError::new(codes::INTERNAL_ERROR, e.to_string()))?;
            cx.rooms.follows_mut().add(&ctx.user, guid);
        }
    }
    for guid in &joined {
        // Joining answers the room's invitation and reads its new content.
        cx.store
            .mark_invitation_seen(&ctx.user, guid)
            .and_then(|()| cx.store.mark_read(&ctx.user, guid))
            .map_err(super::store_err)?;
        let Some(room) = cx.rooms.get_mut(guid) else {
            continue;
        };
        let newly_online = !room.joined.values().any(|u| *u == ctx.user);
        if newly_online {
            record(cx, EventKind::Join, guid, &ctx.user, "")?;
        }
        let Some(room) = cx.rooms.get_mut(guid) else {
            continue;
        };
        if room.joined.insert(ctx.dialog, ctx.user.clone()).is_none() {
            undo_on_abort(cx, Undo::Joined(guid.clone(), ctx.dialog));
        }
        if newly_online {
            notify_join(cx, guid, &ctx.user, ctx.dialog, batch);
        }
    }
    if cx.cfg.pooled() {
        return Ok(pool_rooms_reply(cx, &joined));
    }
    Ok(rooms_reply_with(cx, &joined, true, &BTreeMap::new()))
}

/// [`rooms_reply`] in a pool: the online participants also list the users the pool's
/// open-sessions ledger has in the room on other members (a store failure leaves
/// those out).
fn pool_rooms_reply(cx: &mut BatchCx, guids: &[String]) -> RplData {
    let mut elsewhere = BTreeMap::new();
    for guid in guids {
        let Some(uri) = cx.rooms.get(guid).map(|r| r.uri.clone()) else {
            continue;
        };
        match cx.store.room_sessions(&uri) {
            Ok(users) => {
                elsewhere.insert(guid.clone(), users);
            }
            Err(e) => tracing::warn!("pool: participants of other members left out: {e}"),
        }
    }
    rooms_reply_with(cx, guids, true, &elsewhere)
}

/// Leaves the room (idempotent) and unfollows it. Errors: 404 for an unknown room.
pub fn part(cx: &mut BatchCx, ctx: &Ctx, chan: &ChanRef) -> CmdResult {
    let uri = chan.to_uri();
    let guid = crate::ids::split_room_uri(&uri)
        .filter(|(d, _)| d.eq_ignore_ascii_case(&cx.cfg.domain))
        .map(|(_, g)| g.to_string())
        .filter(|g| {
            cx.rooms
                .get(g)
                .is_some_and(|r| crate::channel::authz::can_find(cx.rooms, r, &ctx.user))
        })
        .ok_or_else(|| CmdError::new(codes::NO_SUCH_ROOM, "no such room"))?;
    cx.store
        .unfollow(&ctx.user, &guid)
        .map_err(|e| CmdError::new(codes::INTERNAL_ERROR, e.to_string()))?;
    let Some(room) = cx.rooms.get_mut(&guid) else {
        return Err(CmdError::new(codes::NO_SUCH_ROOM, "room vanished"));
    };
    let was_joined = room.joined.remove(&ctx.dialog).is_some();
    if was_joined {
        undo_on_abort(cx, Undo::Parted(guid.clone(), ctx.dialog, ctx.user.clone()));
    }
    let Some(room) = cx.rooms.get_mut(&guid) else {
        return Err(CmdError::new(codes::NO_SUCH_ROOM, "room vanished"));
    };
    let still_online = room.joined.values().any(|u| *u == ctx.user);
    let room_uri = room.uri.clone();
    if was_joined && !still_online {
        record(cx, EventKind::Part, &guid, &ctx.user, "")?;
        notify_part(cx, &guid, &ctx.user, ctx.dialog);
    }
    Ok(RplData::Chan(room_uri))
}

/// The rooms data form for `guids` (rpl:getassociations, rpl:getinv, room management
/// replies): a `chanib` per room with `aib` 3984 (online participants) and 12276 (the
/// room's managers) by `uib` id, then the `uib` id -> URI list.
pub fn rooms_reply(cx: &BatchCx, guids: &[String]) -> RplData {
    rooms_reply_with(cx, guids, false, &BTreeMap::new())
}

/// As [`rooms_reply`], with more online participants per room GUID (`more`: users the
/// pool's ledger has in the room on other members). With `online_managers` (the
/// `rpl:join` participant list) `aib` 12276 lists only the managers who are online in
/// the room: SIPE shows every listed user as present.
fn rooms_reply_with(
    cx: &BatchCx,
    guids: &[String],
    online_managers: bool,
    more: &BTreeMap<String, Vec<String>>,
) -> RplData {
    let mut ids: BTreeMap<String, u32> = BTreeMap::new();
    let mut users: Vec<UserRef> = Vec::new();
    let mut id_of = |uri: &str, users: &mut Vec<UserRef>| -> u32 {
        if let Some(id) = ids.get(uri) {
            return *id;
        }
        let id = users.len() as u32;
        ids.insert(uri.to_string(), id);
        users.push(UserRef {
            id,
            uri: uri.to_string(),
        });
        id
    };
    let mut rooms = Vec::new();
    for guid in guids {
        let Some(r) = cx.rooms.get(guid) else {
            continue;
        };
        let mut online = r.online_users();
        online.extend(more.get(guid).into_iter().flatten().map(String::as_str));
        let managers = r
            .roles
            .managers
            .iter()
            .filter(|m| !online_managers || online.contains(m.as_str()))
            .cloned()
            .collect::<Vec<_>>();
        let participants = online.into_iter().map(|u| id_of(u, &mut users)).collect();
        let managers = managers.iter().map(|u| id_of(u, &mut users)).collect();
        rooms.push(RoomInfo {
            uri: r.uri.clone(),
            name: r.attrs.name.clone(),
            topic: r.attrs.topic.clone(),
            description: r.attrs.description.clone(),
            participants,
            managers,
        });
    }
    RplData::Rooms { rooms, users }
}

fn others(cx: &BatchCx, guid: &str, except: DialogId) -> Vec<DialogId> {
    cx.rooms
        .get(guid)
        .map(|r| r.joined_except(except))
        .unwrap_or_default()
}

/// Sends `ntc:join` (or `ntc:bjoin`) about `user` to the room's other dialogs (in a
/// pool: logs it, and every member sends it from the log, `crate::pool`).
pub fn notify_join(cx: &mut BatchCx, guid: &str, user: &str, except: DialogId, batch: bool) {
    if cx.cfg.pooled() {
        let kind = if batch { LogKind::BJoin } else { LogKind::Join };
        return log_presence(cx, kind, guid, user, except);
    }
    let targets = others(cx, guid, except);
    if targets.is_empty() {
        return;
    }
    let body = cx.out.encode_envelope(Body::Ntc(Ntc {
        id: if batch { "ntc:bjoin" } else { "ntc:join" }.to_string(),
        data: NtcData::Join {
            user: user.to_string(),
            domain: cx.cfg.domain.clone(),
            room_guid: guid.to_string(),
        },
    }));
    for d in targets {
        cx.out.send_info(d, body.clone(), false);
    }
}

/// Sends `ntc:part` about `user` to the room's remaining dialogs (in a pool: logs it,
/// as [`notify_join`]).
pub fn notify_part(cx: &mut BatchCx, guid: &str, user: &str, except: DialogId) {
    if cx.cfg.pooled() {
        return log_presence(cx, LogKind::Part, guid, user, except);
    }
    let targets = others(cx, guid, except);
    let Some(uri) = cx.rooms.get(guid).map(|r| r.uri.clone()) else {
        return;
    };
    if targets.is_empty() {
        return;
    }
    let body = cx.out.encode_envelope(Body::Ntc(Ntc {
        id: "ntc:part".to_string(),
        data: NtcData::Part {
            chan_uri: uri,
            user: user.to_string(),
        },
    }));
    for d in targets {
        cx.out.send_info(d, body.clone(), false);
    }
}
