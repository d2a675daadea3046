//! Which rooms the users online on this server follow: the candidates for
//! `ntc:newcontent` (`cmd/newcontent.rs`), so that a post costs the room's *online*
//! followers, not every user who ever followed it (a lookup in the store's `followed`
//! table grows with every user who ever joined the room: with SIPp's one user per
//! call, 30,000 after ten seconds, and each post read them all).
//!
//! **A superset of the truth, by design.** A user's rooms are loaded from the store
//! when the user's first dialog (not the SIPE bootstrap) is established, a room is
//! added when the user follows it in this session (`cmd:join`, prefs, a pool member's
//! join log entry), and all of them are dropped when the user's last dialog ends.
//! Unfollowing removes nothing: a batch that rolls back could otherwise leave a room
//! out. Whoever reads a candidate confirms it in the store
//! (`Store::unread_count` answers `None` for a room not followed).
//!
//! Ordered maps only (DESIGN.md determinism): candidates come out sorted by user URI,
//! the order the store's `followers` query gave before.

use std::collections::{BTreeMap, BTreeSet};

/// Rooms followed by online users, indexed both ways (the two maps mirror each other:
/// [`OnlineFollows::indices_agree`]). Users are dialog URIs (`sip:user@domain`, lower
/// case); rooms are GUIDs.
#[derive(Debug, Default, Clone)]
pub struct OnlineFollows {
    by_room: BTreeMap<String, BTreeSet<String>>,
    by_user: BTreeMap<String, BTreeSet<String>>,
}

impl OnlineFollows {
    /// Notes that `user` (online) follows room `guid`; idempotent.
    pub fn add(&mut self, user: &str, guid: &str) {
        let rooms = self.by_user.entry(user.to_string()).or_default();
        if rooms.insert(guid.to_string()) {
            self.by_room
                .entry(guid.to_string())
                .or_default()
                .insert(user.to_string());
        }
        debug_assert!(self.indices_agree(), "online follows: indices disagree");
    }

    /// Forgets every room of `user` (its last dialog ended); absent users are ignored.
    pub fn forget_user(&mut self, user: &str) {
        let Some(rooms) = self.by_user.remove(user) else {
            return;
        };
        for guid in rooms {
            if let Some(users) = self.by_room.get_mut(&guid) {
                users.remove(user);
                if users.is_empty() {
                    self.by_room.remove(&guid);
                }
            }
        }
        debug_assert!(self.indices_agree(), "online follows: indices disagree");
    }

    /// The online users noted as following room `guid`, sorted (a superset: confirm
    /// each in the store).
    pub fn of_room(&self, guid: &str) -> impl Iterator<Item = &String> {
        self.by_room.get(guid).into_iter().flatten()
    }

    /// Whether rooms of `user` are noted (the user is online and follows something).
    pub fn knows(&self, user: &str) -> bool {
        self.by_user.contains_key(user)
    }

    /// The invariant: each (user, room) pair stands in both maps, and no set is empty.
    pub fn indices_agree(&self) -> bool {
        let forward: usize = self.by_user.values().map(BTreeSet::len).sum();
        let backward: usize = self.by_room.values().map(BTreeSet::len).sum();
        forward == backward
            && self.by_room.values().all(|u| !u.is_empty())
            && self.by_user.iter().all(|(user, rooms)| {
                !rooms.is_empty()
                    && rooms
                        .iter()
                        .all(|g| self.by_room.get(g).is_some_and(|u| u.contains(user)))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::OnlineFollows;

    #[test]
    fn rooms_are_indexed_both_ways_and_forgotten_with_the_user() {
        let mut f = OnlineFollows::default();
        let follows = [("sip:b@d", "g1"), ("sip:a@d", "g1"), ("sip:a@d", "g2")];
        // The last one twice: adding is idempotent.
        for (user, guid) in follows.iter().chain(&follows[2..]) {
            f.add(user, guid);
        }
        assert_eq!(
            f.of_room("g1").collect::<Vec<_>>(),
            ["sip:a@d", "sip:b@d"],
            "sorted"
        );
        assert_eq!(
            f.of_room("g2").collect::<Vec<_>>(),
            ["sip:a@d"],
            "idempotent"
        );
        assert!(f.knows("sip:a@d"));
        f.forget_user("sip:a@d");
        assert_eq!(f.of_room("g1").collect::<Vec<_>>(), ["sip:b@d"]);
        assert_eq!(f.of_room("g2").count(), 0);
        assert!(!f.knows("sip:a@d"));
        f.forget_user("sip:nobody@d");
        f.forget_user("sip:b@d");
        assert_eq!(f.of_room("g1").count(), 0);
        assert!(
            f.by_room.is_empty() && f.by_user.is_empty(),
            "nothing left behind"
        );
        assert!(f.indices_agree());
    }
}
