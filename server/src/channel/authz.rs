//! Who may do what (product room model, call-flows.md "Room model"; the rules table of
//! issue 3). This module is the single place where the rules live; every command asks
//! [`check`] or [`check_create`] and never decides on its own.
//!
//! | | open | closed | secret |
//! |---|---|---|---|
//! | find (search, know it exists) | in scope | in scope | members in scope |
//! | join / read history | in scope | members | members |
//! | post | as join; presenters only in an auditorium | same | same |
//! | manage (membership, topic, description, privacy) | managers | managers | managers |
//! | create a room in the category | creators in scope | creators in scope | creators in scope |
//!
//! *In scope* means: matched by the category's `allowed` list (a URI or `*@domain`)
//! and not matched by its `denied` list; a denied user is out of scope whatever the
//! room lists say. Managers and presenters are members. A disabled room is known only
//! to its managers (who may manage it but not join it). A room whose category is not
//! configured any more is known to nobody (fail closed).
//!
//! Denials: [`codes::NO_SUCH_ROOM`] (404) whenever the user may not know the room
//! exists - so a secret room answers a non-member exactly like a room that does not
//! exist - and [`codes::NO_PERMISSION`] (403) when the user may know of it but not do
//! the operation. See docs/xccos-codes.md "Denials".

use super::{Category, Room, Rooms};
use crate::config::{Privacy, RoomType};
use crate::xccos::codes;
use std::collections::BTreeSet;

/// Why an operation was refused, as an XCCOS reply code (see docs/xccos-codes.md).
pub type Denial = u16;

/// An operation on a room, as the rules table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Appear in search results, associations, invitations; be named in any reply.
    Find,
    /// Join the room (and follow it).
    Join,
    /// Read its history (`bccontext`) and be told of new content.
    ReadHistory,
    /// Post a grpchat.
    Post,
    /// Change membership, topic, description, privacy, disabled flag.
    Manage,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 5] = [Op::Find, Op::Join, Op::ReadHistory, Op::Post, Op::Manage];
}

/// Whether `user` (a `sip:` URI) is matched by `list` (lower-cased URIs and
/// `*@domain` entries), case-insensitively.
pub fn listed(list: &BTreeSet<String>, user: &str) -> bool {
    let user = user.to_lowercase();
    if list.contains(&user) {
        return true;
    }
    match user.rsplit_once('@') {
        Some((_, domain)) => list.contains(&format!("*@{domain}")),
        None => false,
    }
}

/// Whether `user` is in the scope of category `cat`: allowed and not denied.
pub fn in_scope(cat: &Category, user: &str) -> bool {
    !listed(&cat.denied, user) && listed(&cat.allowed, user)
}

/// Whether `user` may do `op` on `room`. Errors: 404 when the user may not know the
/// room exists (out of scope, secret and not a member, disabled and not a manager,
/// category gone), 403 when the user may know of it but not do `op`.
pub fn check(rooms: &Rooms, room: &Room, user: &str, op: Op) -> Result<(), Denial> {
    check_in(rooms.category_of(room), room, user, op)
}

/// [`check`] with the room's category already looked up (`None`: not configured).
pub fn check_in(cat: Option<&Category>, room: &Room, user: &str, op: Op) -> Result<(), Denial> {
    let Some(cat) = cat else {
        return Err(codes::NO_SUCH_ROOM);
    };
    let member = room.roles.members.contains(user);
    let manager = room.roles.managers.contains(user);
    let visible = in_scope(cat, user)
        && (room.attrs.privacy != Privacy::Secret || member)
        && (!room.attrs.disabled || manager);
    if !visible {
        return Err(codes::NO_SUCH_ROOM);
    }
    let may_enter = !room.attrs.disabled && (room.attrs.privacy == Privacy::Open || member);
    let allowed = match op {
        Op::Find => true,
        Op::Join | Op::ReadHistory => may_enter,
        Op::Post => {
            may_enter
                && (room.attrs.room_type == RoomType::Normal
                    || room.roles.presenters.contains(user))
        }
        Op::Manage => manager,
    };
    if allowed {
        Ok(())
    } else {
        Err(codes::NO_PERMISSION)
    }
}

/// Whether `user` may find `room` (shorthand for [`check`] with [`Op::Find`]).
pub fn can_find(rooms: &Rooms, room: &Room, user: &str) -> bool {
    check(rooms, room, user, Op::Find).is_ok()
}

/// Whether `user` may create a room in category `cat`: a creator in scope. Errors:
/// 403 (categories are not secret).
pub fn check_create(cat: &Category, user: &str) -> Result<(), Denial> {
    if in_scope(cat, user) && listed(&cat.creators, user) {
        Ok(())
    } else {
        Err(codes::NO_PERMISSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CategoryConfig;
    use std::collections::BTreeMap;

    fn cat() -> Category {
        let mut c = CategoryConfig::implicit_default("d.com");
        c.denied = vec!["sip:Bad@d.com".into()];
        c.creators = vec!["*@d.com".into()];
        Category::from_config("d.com", &c)
    }

    fn room(privacy: Privacy, room_type: RoomType) -> Room {
        Room {
            guid: "g".into(),
            uri: "ma-chan://d.com/g".into(),
            attrs: crate::store::RoomAttrs {
                privacy,
                category: "Default".into(),
                room_type,
                ..crate::store::RoomAttrs::open("R")
            },
            roles: crate::channel::Roles {
                members: BTreeSet::from(["sip:m@d.com".to_string(), "sip:p@d.com".to_string()]),
                managers: BTreeSet::new(),
                presenters: BTreeSet::from(["sip:p@d.com".to_string()]),
            },
            joined: BTreeMap::new(),
        }
    }

    #[test]
    fn scope_lists_are_case_insensitive_and_denied_wins() {
        let c = cat();
        assert!(in_scope(&c, "sip:a@D.COM"));
        assert!(!in_scope(&c, "sip:a@other.com"));
        assert!(!in_scope(&c, "sip:bad@d.com"), "denied beats *@d.com");
        assert_eq!(check_create(&c, "sip:a@d.com"), Ok(()));
        assert_eq!(check_create(&c, "sip:bad@d.com"), Err(codes::NO_PERMISSION));
    }

    #[test]
    fn auditorium_posts_need_presenter_and_unknown_category_hides() {
        let c = cat();
        let r = room(Privacy::Open, RoomType::Auditorium);
        assert_eq!(check_in(Some(&c), &r, "sip:m@d.com", Op::Join), Ok(()));
        assert_eq!(
            check_in(Some(&c), &r, "sip:m@d.com", Op::Post),
            Err(codes::NO_PERMISSION)
        );
        assert_eq!(check_in(Some(&c), &r, "sip:p@d.com", Op::Post), Ok(()));
        assert_eq!(
            check_in(None, &r, "sip:p@d.com", Op::Find),
            Err(codes::NO_SUCH_ROOM)
        );
        let mut d = room(Privacy::Open, RoomType::Normal);
        d.attrs.disabled = true;
        d.roles.managers.insert("sip:m@d.com".into());
        assert_eq!(
            check_in(Some(&c), &d, "sip:o@d.com", Op::Find),
            Err(codes::NO_SUCH_ROOM)
        );
        assert_eq!(check_in(Some(&c), &d, "sip:m@d.com", Op::Manage), Ok(()));
        assert_eq!(
            check_in(Some(&c), &d, "sip:m@d.com", Op::Join),
            Err(codes::NO_PERMISSION)
        );
    }
}
