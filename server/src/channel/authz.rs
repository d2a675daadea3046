//! Who may do what in a room (product room model, call-flows.md "Room model").
//!
//! Enforced server-side on every command. Scope (walking skeleton): users of the
//! server's own domain are in scope of the default category; users of other domains
//! are not. Secret rooms answer "not found" to non-members so existence never leaks.

use super::Room;
use crate::config::Privacy;
use crate::xccos::codes;

/// Why an operation was refused, as an XCCOS reply code (see docs/xccos-codes.md).
pub type Denial = u16;

/// Whether `user` (a `sip:` URI) is in the scope of the server's `domain`.
pub fn in_scope(user: &str, domain: &str) -> bool {
    user.rsplit_once('@')
        .map(|(_, d)| d.eq_ignore_ascii_case(domain))
        .unwrap_or(false)
}

/// Whether `user` may see `room` in search results and know it exists.
pub fn can_find(room: &Room, user: &str, domain: &str) -> bool {
    if !in_scope(user, domain) {
        return false;
    }
    match room.privacy {
        Privacy::Open | Privacy::Closed => true,
        Privacy::Secret => room.members.contains(user),
    }
}

/// May `user` join `room` and read its history? Errors: 404 when the user may not even
/// know the room exists (secret, out of scope), 403 otherwise.
pub fn check_join(room: &Room, user: &str, domain: &str) -> Result<(), Denial> {
    if !can_find(room, user, domain) {
        return Err(codes::NO_SUCH_ROOM);
    }
    match room.privacy {
        Privacy::Open => Ok(()),
        Privacy::Closed | Privacy::Secret if room.members.contains(user) => Ok(()),
        _ => Err(codes::NO_PERMISSION),
    }
}

/// May `user` post to `room`? Same rule as joining (the skeleton has no auditoriums).
pub fn check_post(room: &Room, user: &str, domain: &str) -> Result<(), Denial> {
    check_join(room, user, domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn room(privacy: Privacy) -> Room {
        Room {
            guid: "g".into(),
            uri: "ma-chan://d.com/g".into(),
            name: "R".into(),
            description: String::new(),
            topic: String::new(),
            privacy,
            members: BTreeSet::from(["sip:m@d.com".to_string()]),
            managers: BTreeSet::new(),
            joined: BTreeMap::new(),
        }
    }

    #[test]
    fn matrix() {
        let (m, o, x) = ("sip:m@d.com", "sip:o@d.com", "sip:x@other.com");
        let open = room(Privacy::Open);
        let closed = room(Privacy::Closed);
        let secret = room(Privacy::Secret);
        assert_eq!(check_join(&open, o, "d.com"), Ok(()));
        assert_eq!(check_join(&open, x, "d.com"), Err(codes::NO_SUCH_ROOM));
        assert_eq!(check_join(&closed, o, "d.com"), Err(codes::NO_PERMISSION));
        assert_eq!(check_join(&closed, m, "d.com"), Ok(()));
        assert_eq!(check_join(&secret, o, "d.com"), Err(codes::NO_SUCH_ROOM));
        assert_eq!(check_join(&secret, m, "d.com"), Ok(()));
        assert!(can_find(&closed, o, "d.com"));
        assert!(!can_find(&secret, o, "d.com"));
        assert!(in_scope("sip:a@D.COM", "d.com"));
    }
}
