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
use crate::core::Core;
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
    apply(self, core, ctx) { join(core, ctx, std::slice::from_ref(&self.chan), false) }
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
    apply(self, core, ctx) { join(core, ctx, &self.chans, true) }
}

command! {
    /// `cmd:part`: `<data><chanib uri="ma-chan://…"/></data>` (or a `chanid`).
    Part ["cmd:part"] -> "rpl:part" {
        /// The room to leave.
        pub chan: ChanRef,
    }
    parse(p, data) { Ok(Part { chan: p.first_chanref(p.data(data)?)? }) }
    data(self) { Elem::data([chanref_elem(&self.chan)]) }
    apply(self, core, ctx) { part(core, ctx, &self.chan) }
}

/// Joins the dialog to each named room it may enter. A single `join` that is refused
/// answers the refusal (404/403); a `bjoin` answers 200 with the rooms it could join and
/// leaves the others out (an error only if it joined none).
pub fn join(core: &mut Core, ctx: &Ctx, chans: &[ChanRef], batch: bool) -> CmdResult {
    let mut joined = Vec::new();
    let mut first_err = None;
    for chan in chans {
        match room_for(core, &ctx.user, chan) {
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
            core.store
                .follow(&ctx.user, guid)
                .map_err(|e| CmdError::new(codes::INTERNAL_ERROR, e.to_string()))?;
        }
    }
    for guid in &joined {
        // Joining answers the room's invitation and reads its new content.
        core.store
            .mark_invitation_seen(&ctx.user, guid)
            .and_then(|()| core.store.mark_read(&ctx.user, guid))
            .map_err(super::store_err)?;
        let Some(room) = core.rooms.get_mut(guid) else {
            continue;
        };
        let newly_online = !room.joined.values().any(|u| *u == ctx.user);
        if newly_online {
            record(core, EventKind::Join, guid, &ctx.user, "")?;
        }
        let Some(room) = core.rooms.get_mut(guid) else {
            continue;
        };
        if room.joined.insert(ctx.dialog, ctx.user.clone()).is_none() {
            undo_on_abort(core, Undo::Joined(guid.clone(), ctx.dialog));
        }
        if newly_online {
            notify_join(core, guid, &ctx.user, ctx.dialog, batch);
        }
    }
    if core.cfg.pooled() {
        return Ok(pool_rooms_reply(core, &joined));
    }
    Ok(rooms_reply_with(core, &joined, true, &BTreeMap::new()))
}

/// [`rooms_reply`] in a pool: the online participants also list the users the pool's
/// open-sessions ledger has in the room on other members (a store failure leaves
/// those out).
fn pool_rooms_reply(core: &mut Core, guids: &[String]) -> RplData {
    let mut elsewhere = BTreeMap::new();
    for guid in guids {
        let Some(uri) = core.rooms.get(guid).map(|r| r.uri.clone()) else {
            continue;
        };
        match core.store.room_sessions(&uri) {
            Ok(users) => {
                elsewhere.insert(guid.clone(), users);
            }
            Err(e) => tracing::warn!("pool: participants of other members left out: {e}"),
        }
    }
    rooms_reply_with(core, guids, true, &elsewhere)
}

/// Leaves the room (idempotent) and unfollows it. Errors: 404 for an unknown room.
pub fn part(core: &mut Core, ctx: &Ctx, chan: &ChanRef) -> CmdResult {
    let uri = chan.to_uri();
    let guid = crate::ids::split_room_uri(&uri)
        .filter(|(d, _)| d.eq_ignore_ascii_case(&core.cfg.domain))
        .map(|(_, g)| g.to_string())
        .filter(|g| {
            core.rooms
                .get(g)
                .is_some_and(|r| crate::channel::authz::can_find(&core.rooms, r, &ctx.user))
        })
        .ok_or_else(|| CmdError::new(codes::NO_SUCH_ROOM, "no such room"))?;
    core.store
        .unfollow(&ctx.user, &guid)
        .map_err(|e| CmdError::new(codes::INTERNAL_ERROR, e.to_string()))?;
    let Some(room) = core.rooms.get_mut(&guid) else {
        return Err(CmdError::new(codes::NO_SUCH_ROOM, "room vanished"));
    };
    let was_joined = room.joined.remove(&ctx.dialog).is_some();
    if was_joined {
        undo_on_abort(
            core,
            Undo::Parted(guid.clone(), ctx.dialog, ctx.user.clone()),
        );
    }
    let Some(room) = core.rooms.get_mut(&guid) else {
        return Err(CmdError::new(codes::NO_SUCH_ROOM, "room vanished"));
    };
    let still_online = room.joined.values().any(|u| *u == ctx.user);
    let room_uri = room.uri.clone();
    if was_joined && !still_online {
        record(core, EventKind::Part, &guid, &ctx.user, "")?;
        notify_part(core, &guid, &ctx.user, ctx.dialog);
    }
    Ok(RplData::Chan(room_uri))
}

/// The rooms data form for `guids` (rpl:getassociations, rpl:getinv, room management
/// replies): a `chanib` per room with `aib` 3984 (online participants) and 12276 (the
/// room's managers) by `uib` id, then the `uib` id -> URI list.
pub fn rooms_reply(core: &Core, guids: &[String]) -> RplData {
    rooms_reply_with(core, guids, false, &BTreeMap::new())
}

/// As [`rooms_reply`], with more online participants per room GUID (`more`: users the
/// pool's ledger has in the room on other members). With `online_managers` (the
/// `rpl:join` participant list) `aib` 12276 lists only the managers who are online in
/// the room: SIPE shows every listed user as present.
fn rooms_reply_with(
    core: &Core,
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
        let Some(r) = core.rooms.get(guid) else {
            continue;
        };
        let mut online = r.online_users();
        online.extend(more.get(guid).into_iter().flatten().map(String::as_str));
        let managers = r
            .managers
            .iter()
            .filter(|m| !online_managers || online.contains(m.as_str()))
            .cloned()
            .collect::<Vec<_>>();
        let participants = online.into_iter().map(|u| id_of(u, &mut users)).collect();
        let managers = managers.iter().map(|u| id_of(u, &mut users)).collect();
        rooms.push(RoomInfo {
            uri: r.uri.clone(),
            name: r.name.clone(),
            topic: r.topic.clone(),
            description: r.description.clone(),
            participants,
            managers,
        });
    }
    RplData::Rooms { rooms, users }
}

fn others(core: &Core, guid: &str, except: DialogId) -> Vec<DialogId> {
    core.rooms
        .get(guid)
        .map(|r| r.joined_except(except))
        .unwrap_or_default()
}

/// Sends `ntc:join` (or `ntc:bjoin`) about `user` to the room's other dialogs (in a
/// pool: logs it, and every member sends it from the log, `crate::pool`).
pub fn notify_join(core: &mut Core, guid: &str, user: &str, except: DialogId, batch: bool) {
    if core.cfg.pooled() {
        let kind = if batch { LogKind::BJoin } else { LogKind::Join };
        return log_presence(core, kind, guid, user, except);
    }
    let targets = others(core, guid, except);
    if targets.is_empty() {
        return;
    }
    let body = core.encode_envelope(Body::Ntc(Ntc {
        id: if batch { "ntc:bjoin" } else { "ntc:join" }.to_string(),
        data: NtcData::Join {
            user: user.to_string(),
            domain: core.cfg.domain.clone(),
            room_guid: guid.to_string(),
        },
    }));
    for d in targets {
        core.send_info(d, body.clone(), false);
    }
}

/// Sends `ntc:part` about `user` to the room's remaining dialogs (in a pool: logs it,
/// as [`notify_join`]).
pub fn notify_part(core: &mut Core, guid: &str, user: &str, except: DialogId) {
    if core.cfg.pooled() {
        return log_presence(core, LogKind::Part, guid, user, except);
    }
    let targets = others(core, guid, except);
    let Some(uri) = core.rooms.get(guid).map(|r| r.uri.clone()) else {
        return;
    };
    if targets.is_empty() {
        return;
    }
    let body = core.encode_envelope(Body::Ntc(Ntc {
        id: "ntc:part".to_string(),
        data: NtcData::Part {
            chan_uri: uri,
            user: user.to_string(),
        },
    }));
    for d in targets {
        core.send_info(d, body.clone(), false);
    }
}
