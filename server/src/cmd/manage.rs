//! Room management over XCCOS **(design)**: `cmd:nodespermcreatechild`,
//! `cmd:createroom` (creators of the category) and `cmd:updateroom` (managers of the
//! room). Every decision is [`authz`]'s.
//!
//! - `nodespermcreatechild`: 200 with empty data when the user may create rooms in at
//!   least one category, 403 otherwise.
//! - `createroom`: the new room's GUID is derived from its name (as for configured
//!   rooms); the creator becomes a manager. Reply `rpl:createroom` in the `rpl:join`
//!   data form. Users listed get an invitation when the room's invitations are on.
//! - `updateroom`: changes topic, description, privacy, type, invitations, disabled and
//!   membership. Users who gain a role get an invitation (invitations on). Joined
//!   dialogs of users who may no longer enter are removed from the room (`ntc:part`
//!   about them to the room, themselves included); the remaining participants get
//!   `ntc:chanupdate` with the new attributes. Reply `rpl:updateroom`.
//!
//! Changes to rooms defined in the config file last until the next start (the config
//! wins). Name and category are fixed once a room exists (400 when asked to change).

use super::{join::rooms_reply, room_op, store_err, CmdError, CmdResult, Ctx};
use crate::channel::authz::{self, Op};
use crate::channel::{DialogId, Roles, Room};
use crate::compliance::record::pool_entry;
use crate::config::{Invitations, Privacy, RoomType, DEFAULT_CATEGORY};
use crate::core::BatchCx;
use crate::store::LogKind;
use crate::xccos::elem::{chanref_elem, AttrValue, DataParser, Elem};
use crate::xccos::{codes, Body, ChanRef, Ntc, NtcData, RoomInfo, RplData, XccosError};
use std::collections::{BTreeMap, BTreeSet};

command! {
    /// `cmd:nodespermcreatechild`, `<data/>`: may the user create rooms?
    NodesPermCreateChild ["cmd:nodespermcreatechild"] -> "rpl:nodespermcreatechild";
    apply(self, cx, ctx) { may_create(cx, ctx) }
}

command! {
    /// `cmd:createroom` **(design)**: `<data><chanib name="…" description="…" topic="…"
    /// privacy="open|closed|secret" type="normal|auditorium" invitations="inherit|on|off"
    /// category="…"/><uib uri="sip:…" role="member|manager|presenter"/>…</data>`.
    CreateRoom ["cmd:createroom"] -> "rpl:createroom" {
        /// Attributes of the new room (`uri` and `disabled` ignored; `name` required).
        pub attrs: Box<RoomAttrs>,
        /// Initial members, managers and presenters.
        pub users: Vec<RoleChange>,
    }
    parse(p, data) {
        let d = p.data(data)?;
        let ch = p.child(d, "chanib")?;
        Ok(CreateRoom {
            attrs: Box::new(RoomAttrs::parse(p, ch)?),
            users: RoleChange::parse_all(p, d, "uib")?,
        })
    }
    data(self) {
        let chanib = self.attrs.write_into(Elem::new("chanib"));
        Elem::data(std::iter::once(chanib).chain(RoleChange::elems("uib", &self.users)))
    }
    apply(self, cx, ctx) { create(cx, ctx, &self.attrs, &self.users) }
}

command! {
    /// `cmd:updateroom` **(design)**: `<data><chanib uri="…" topic="…" description="…"
    /// privacy="…" type="…" invitations="…" disabled="true|false"/><add uri="sip:…"
    /// role="member"/>…<remove uri="sip:…" role="member"/>…</data>`; attributes left
    /// out are unchanged.
    UpdateRoom ["cmd:updateroom"] -> "rpl:updateroom" {
        /// The room (from the `chanib`/`chanid`).
        pub chan: ChanRef,
        /// New attribute values (`name`, `category` must not change).
        pub attrs: Box<RoomAttrs>,
        /// Users to add, with a role.
        pub add: Vec<RoleChange>,
        /// Users to remove from a role.
        pub remove: Vec<RoleChange>,
    }
    parse(p, data) {
        let d = p.data(data)?;
        let chan = p.first_chanref(d)?;
        let attrs = match d.children.iter().find(|c| c.name == "chanib") {
            Some(ch) => RoomAttrs::parse(p, ch)?,
            None => RoomAttrs::default(),
        };
        Ok(UpdateRoom {
            chan,
            attrs: Box::new(attrs),
            add: RoleChange::parse_all(p, d, "add")?,
            remove: RoleChange::parse_all(p, d, "remove")?,
        })
    }
    /// The room as a `chanib` carrying the changed attributes; a room named by `chanid`
    /// gets a `chanib` with its URI only when attributes change.
    data(self) {
        let mut d = Elem::new("data");
        match &self.chan {
            ChanRef::Uri(uri) => {
                let chanib = Elem::new("chanib").with("uri", uri.as_str());
                d.children.push(self.attrs.write_into(chanib));
            }
            ChanRef::Id { .. } => {
                d.children.push(chanref_elem(&self.chan));
                if *self.attrs != RoomAttrs::default() {
                    let chanib = Elem::new("chanib").with("uri", self.chan.to_uri());
                    d.children.push(self.attrs.write_into(chanib));
                }
            }
        }
        d.children.extend(RoleChange::elems("add", &self.add));
        d.children.extend(RoleChange::elems("remove", &self.remove));
        d
    }
    apply(self, cx, ctx) { update(cx, ctx, &self.chan, &self.attrs, &self.add, &self.remove) }
}

/// Room attributes carried by `cmd:createroom` / `cmd:updateroom` **(design)**, as
/// the `chanib` attributes of the same names; `None` = attribute absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomAttrs {
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `topic`.
    pub topic: Option<String>,
    /// `privacy`: `open` | `closed` | `secret`.
    pub privacy: Option<String>,
    /// `type`: `normal` | `auditorium`.
    pub room_type: Option<String>,
    /// `invitations`: `inherit` | `on` | `off`.
    pub invitations: Option<String>,
    /// `category` (name).
    pub category: Option<String>,
    /// `disabled`: `true` | `false`.
    pub disabled: Option<bool>,
}

/// `<uib uri="sip:…" role="member|manager|presenter"/>` (and `add`/`remove`) in room
/// management commands **(design)**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    /// User URI.
    pub uri: String,
    /// `member` | `manager` | `presenter` (missing: `member`).
    pub role: String,
}

impl RoomAttrs {
    /// The attributes of a `chanib` (`disabled` must be a boolean).
    fn parse(p: &DataParser<'_>, ch: &Elem) -> Result<RoomAttrs, XccosError> {
        let s = |k: &str| ch.attr(k).map(str::to_owned);
        Ok(RoomAttrs {
            name: s("name"),
            description: s("description"),
            topic: s("topic"),
            privacy: s("privacy"),
            room_type: s("type"),
            invitations: s("invitations"),
            category: s("category"),
            disabled: match ch.attr("disabled") {
                None => None,
                Some(_) => Some(bool::req(p, ch, "disabled")?),
            },
        })
    }
    /// `el` with the attributes that are set appended, in wire order.
    fn write_into(&self, el: Elem) -> Elem {
        let el = el
            .with_opt("name", self.name.as_ref())
            .with_opt("description", self.description.as_ref())
            .with_opt("topic", self.topic.as_ref())
            .with_opt("privacy", self.privacy.as_ref())
            .with_opt("type", self.room_type.as_ref())
            .with_opt("invitations", self.invitations.as_ref())
            .with_opt("category", self.category.as_ref());
        match self.disabled {
            Some(d) => el.with("disabled", d.to_string()),
            None => el,
        }
    }
}

impl RoleChange {
    /// Every `name` child of `d` (`uri` required, `role` defaults to `member`).
    fn parse_all(p: &DataParser<'_>, d: &Elem, name: &str) -> Result<Vec<RoleChange>, XccosError> {
        d.children_named(name)
            .map(|u| {
                Ok(RoleChange {
                    uri: p.attr(u, "uri")?.to_owned(),
                    role: u.attr("role").unwrap_or("member").to_owned(),
                })
            })
            .collect()
    }
    /// `<{name} uri role/>` for each change.
    fn elems<'a>(name: &'a str, list: &'a [RoleChange]) -> impl Iterator<Item = Elem> + 'a {
        list.iter().map(move |u| {
            Elem::new(name)
                .with("uri", u.uri.as_str())
                .with("role", u.role.as_str())
        })
    }
}

/// Longest room name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

fn bad(reason: impl Into<String>) -> CmdError {
    CmdError::new(codes::BAD_REQUEST, reason)
}

/// `cmd:nodespermcreatechild`. Errors: 403 when the user is a creator nowhere.
pub fn may_create(cx: &BatchCx, ctx: &Ctx) -> CmdResult {
    if cx
        .rooms
        .categories()
        .any(|c| authz::check_create(c, &ctx.user).is_ok())
    {
        Ok(RplData::Empty)
    } else {
        Err(CmdError::new(
            codes::NO_PERMISSION,
            "not a creator in any category",
        ))
    }
}

/// Applies the attributes that may change on an existing room. Errors: 400 for an
/// invalid value, 413 for a topic/description over `storySizeLimit` characters.
fn apply_attrs(cx: &BatchCx, room: &mut Room, a: &RoomAttrs) -> Result<(), CmdError> {
    let limit = cx.cfg.limits.story_size_limit as usize;
    for (what, v) in [("topic", &a.topic), ("description", &a.description)] {
        if let Some(v) = v {
            let n = v.chars().count();
            if n > limit {
                return Err(CmdError::new(
                    codes::TOO_LARGE,
                    format!("{what} of {n} characters exceeds storySizeLimit {limit}"),
                ));
            }
        }
    }
    if let Some(v) = &a.topic {
        room.attrs.topic = v.clone();
    }
    if let Some(v) = &a.description {
        room.attrs.description = v.clone();
    }
    if let Some(v) = &a.privacy {
        room.attrs.privacy = Privacy::parse(v)
            .ok_or_else(|| bad(format!("privacy {v:?} is not open, closed or secret")))?;
    }
    if let Some(v) = &a.room_type {
        room.attrs.room_type = RoomType::parse(v)
            .ok_or_else(|| bad(format!("type {v:?} is not normal or auditorium")))?;
    }
    if let Some(v) = &a.invitations {
        room.attrs.invitations = Invitations::parse(v)
            .ok_or_else(|| bad(format!("invitations {v:?} is not inherit, on or off")))?;
    }
    if let Some(v) = a.disabled {
        room.attrs.disabled = v;
    }
    Ok(())
}

fn check_uri(u: &str) -> Result<(), CmdError> {
    let ok = u
        .strip_prefix("sip:")
        .and_then(|r| r.split_once('@'))
        .is_some_and(|(n, d)| !n.is_empty() && !d.is_empty() && !d.contains(['@', ' ', '<', '>']));
    if ok {
        Ok(())
    } else {
        Err(bad(format!("{u:?} is not a SIP URI like sip:user@domain")))
    }
}

/// Adds (`add` true) or removes a user's role. Errors: 400 bad URI or role.
fn change_role(room: &mut Room, c: &RoleChange, add: bool) -> Result<(), CmdError> {
    check_uri(&c.uri)?;
    let u = c.uri.clone();
    let set = match c.role.as_str() {
        "member" => None,
        "manager" => Some(&mut room.roles.managers),
        "presenter" => Some(&mut room.roles.presenters),
        r => {
            return Err(bad(format!(
                "role {r:?} is not member, manager or presenter"
            )))
        }
    };
    match (set, add) {
        (Some(set), true) => {
            set.insert(u.clone());
            room.roles.members.insert(u);
        }
        (Some(set), false) => {
            set.remove(&u);
        }
        (None, true) => {
            room.roles.members.insert(u);
        }
        (None, false) => {
            // Leaving the member role leaves every role.
            room.roles.members.remove(&u);
            room.roles.managers.remove(&u);
            room.roles.presenters.remove(&u);
        }
    }
    Ok(())
}

/// Records invitations for `users` (other than the actor) when the room's effective
/// invitations are on.
fn invite(
    cx: &mut BatchCx,
    guid: &str,
    users: &BTreeSet<String>,
    actor: &str,
) -> Result<(), CmdError> {
    let Some(room) = cx.rooms.get(guid) else {
        return Ok(());
    };
    let on = room
        .attrs
        .invitations
        .effective(cx.rooms.category_of(room).is_some_and(|c| c.invitations));
    if !on {
        return Ok(());
    }
    let now = cx.now_ms;
    for u in users.iter().filter(|u| u.as_str() != actor) {
        cx.store
            .add_invitation(u, guid, actor, now)
            .map_err(store_err)?;
    }
    Ok(())
}

/// `cmd:createroom`. Errors: 400 (no name, bad value, unknown category), 403 (not a
/// creator of the category), 409 (the name is taken), 413 (topic/description too long),
/// 500 (store).
pub fn create(cx: &mut BatchCx, ctx: &Ctx, attrs: &RoomAttrs, users: &[RoleChange]) -> CmdResult {
    let name = attrs.name.as_deref().map(str::trim).unwrap_or("");
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.contains(['\r', '\n']) {
        return Err(bad(format!(
            "a room needs a name of 1 to {MAX_NAME_CHARS} characters on one line"
        )));
    }
    let cat_name = attrs.category.as_deref().unwrap_or(DEFAULT_CATEGORY);
    let cat = cx
        .rooms
        .category(cat_name)
        .ok_or_else(|| bad(format!("no category {cat_name:?}")))?;
    authz::check_create(cat, &ctx.user).map_err(|code| {
        CmdError::new(
            code,
            format!("{} is not a creator in {cat_name:?}", ctx.user),
        )
    })?;
    let category = cat.name.clone();
    let guid = crate::ids::room_guid(&cx.cfg.domain, name);
    if cx.rooms.by_name(name).is_some() || cx.rooms.get(&guid).is_some() {
        // Names are unique in the pool; the reply says no more than that.
        return Err(CmdError::new(
            codes::CONFLICT,
            "a room with this name exists",
        ));
    }
    let mut room = Room {
        uri: crate::ids::room_uri(&cx.cfg.domain, &guid),
        guid: guid.clone(),
        attrs: crate::store::RoomAttrs {
            privacy: Privacy::Closed,
            category,
            ..crate::store::RoomAttrs::open(name)
        },
        roles: Roles {
            members: BTreeSet::from([ctx.user.clone()]),
            managers: BTreeSet::from([ctx.user.clone()]),
            presenters: BTreeSet::new(),
        },
        joined: BTreeMap::new(),
    };
    apply_attrs(cx, &mut room, attrs)?;
    room.attrs.disabled = false;
    for u in users {
        change_role(&mut room, u, true)?;
    }
    cx.store.upsert_room(&room.to_record()).map_err(store_err)?;
    let added: BTreeSet<String> = room.roles.members.clone();
    cx.rooms.upsert(room);
    invite(cx, &guid, &added, &ctx.user)?;
    Ok(rooms_reply(cx, &[guid]))
}

/// `cmd:updateroom`. Errors: 404/403 as [`authz::check`] with [`Op::Manage`], 400 (bad
/// value, rename, category change), 413 (topic/description too long), 500 (store).
pub fn update(
    cx: &mut BatchCx,
    ctx: &Ctx,
    chan: &ChanRef,
    attrs: &RoomAttrs,
    add: &[RoleChange],
    remove: &[RoleChange],
) -> CmdResult {
    let mut room = room_op(cx, &ctx.user, chan, Op::Manage)?.clone();
    if attrs.name.as_ref().is_some_and(|n| *n != room.attrs.name) {
        return Err(bad("a room's name cannot be changed"));
    }
    if attrs
        .category
        .as_ref()
        .is_some_and(|c| !c.eq_ignore_ascii_case(&room.attrs.category))
    {
        return Err(bad("a room's category cannot be changed"));
    }
    let before = room.roles.members.clone();
    apply_attrs(cx, &mut room, attrs)?;
    for c in remove {
        change_role(&mut room, c, false)?;
    }
    for c in add {
        change_role(&mut room, c, true)?;
    }
    cx.store.upsert_room(&room.to_record()).map_err(store_err)?;
    let guid = room.guid.clone();
    if cx.cfg.pooled() {
        // The other members reload the room from this entry once it commits.
        let entry = pool_entry(cx, LogKind::Room, &guid, &ctx.user, ctx.dialog);
        cx.store.log_append(&entry).map_err(store_err)?;
    }
    let gained: BTreeSet<String> = room.roles.members.difference(&before).cloned().collect();
    cx.rooms.upsert(room);
    invite(cx, &guid, &gained, &ctx.user)?;
    evict(cx, &guid);
    unfollow_lost(cx, &guid)?;
    notify_update(cx, &guid, ctx.dialog);
    Ok(rooms_reply(cx, &[guid]))
}

/// Pool member: another member updated room `guid` (a committed `room` log entry,
/// `crate::pool`). Reloads the room's record from the store (this member's joined
/// dialogs stay), removes the dialogs whose user may no longer enter it - their PARTs
/// logged in a transaction of its own, so every member sends `ntc:part` - and sends
/// `ntc:chanupdate` to this member's dialogs in the room. Store failures are logged and
/// leave the room as it was.
pub(crate) fn apply_committed_update(cx: &mut BatchCx, guid: &str) {
    let rec = match cx.store.load_rooms() {
        Ok(rooms) => rooms.into_iter().find(|r| r.guid == guid),
        Err(e) => return tracing::warn!("pool: updated room not reloaded: {e}"),
    };
    let Some(rec) = rec else {
        return;
    };
    cx.rooms.upsert(Room::from_record(&cx.cfg.domain, &rec));
    if let Err(e) = cx.store.begin() {
        return tracing::warn!("pool: removals from an updated room not logged: {e}");
    }
    evict(cx, guid);
    if let Err(e) = cx.store.commit() {
        tracing::warn!("pool: removals from an updated room not logged: {e}");
    }
    notify_update(cx, guid, DialogId::MAX);
}

/// Removes from the room every joined dialog whose user may no longer enter it, with
/// `ntc:part` about that user to the room and to the user's removed dialogs.
fn evict(cx: &mut BatchCx, guid: &str) {
    let Some(room) = cx.rooms.get(guid) else {
        return;
    };
    let out: Vec<(DialogId, String)> = room
        .joined
        .iter()
        .filter(|(_, u)| authz::check(cx.rooms, room, u, Op::Join).is_err())
        .map(|(d, u)| (*d, u.clone()))
        .collect();
    let mut users = BTreeMap::<String, Vec<DialogId>>::new();
    for (d, u) in out {
        users.entry(u).or_default().push(d);
    }
    for (user, dialogs) in users {
        // Tell the removed dialogs first (they are still joined), then the room.
        let uri = room_uri(cx, guid);
        let body = cx.out.encode_envelope(Body::Ntc(Ntc {
            id: "ntc:part".to_string(),
            data: NtcData::Part {
                chan_uri: uri,
                user: user.clone(),
            },
        }));
        for d in &dialogs {
            cx.out.send_info(*d, body.clone(), false);
            if let Some(r) = cx.rooms.get_mut(guid) {
                r.joined.remove(d);
            }
        }
        if let Err(e) = cx.store.unfollow(&user, guid) {
            tracing::warn!("unfollow after removal failed: {e}");
        }
        super::join::notify_part(cx, guid, &user, DialogId::MAX);
    }
}

/// Drops the room from the followed list of every follower who may no longer find it
/// (removed from a secret room, or the room became secret).
fn unfollow_lost(cx: &mut BatchCx, guid: &str) -> Result<(), CmdError> {
    let followers = cx.store.followers(guid).map_err(store_err)?;
    let Some(room) = cx.rooms.get(guid) else {
        return Ok(());
    };
    let lost: Vec<String> = followers
        .into_iter()
        .filter(|u| !authz::can_find(cx.rooms, room, u))
        .collect();
    for u in lost {
        cx.store.unfollow(&u, guid).map_err(store_err)?;
    }
    Ok(())
}

fn room_uri(cx: &BatchCx, guid: &str) -> String {
    cx.rooms
        .get(guid)
        .map(|r| r.uri.clone())
        .unwrap_or_default()
}

/// `ntc:chanupdate` with the room's attributes to its joined dialogs but `except`.
fn notify_update(cx: &mut BatchCx, guid: &str, except: DialogId) {
    let Some(room) = cx.rooms.get(guid) else {
        return;
    };
    let targets = room.joined_except(except);
    if targets.is_empty() {
        return;
    }
    let info = RoomInfo {
        uri: room.uri.clone(),
        name: room.attrs.name.clone(),
        topic: room.attrs.topic.clone(),
        description: room.attrs.description.clone(),
        participants: Vec::new(),
        managers: Vec::new(),
    };
    let body = cx.out.encode_envelope(Body::Ntc(Ntc {
        id: "ntc:chanupdate".to_string(),
        data: NtcData::ChanUpdate(info),
    }));
    for d in targets {
        cx.out.send_info(d, body.clone(), false);
    }
}
