//! The Channel service's in-memory state: rooms (loaded from the store) and who is
//! online in each (joined dialogs), plus the authorization rules.
//!
//! Rooms are kept in `BTreeMap`s so every listing and every fan-out happens in a
//! deterministic order (DESIGN.md determinism rules).

pub mod authz;

use crate::config::Privacy;
use crate::store::RoomRecord;
use std::collections::{BTreeMap, BTreeSet};

/// Index of a dialog in the dialog table (see `core::dialog`).
pub type DialogId = u64;

/// A room: persistent attributes plus the online participants.
#[derive(Debug, Clone)]
pub struct Room {
    /// GUID (last URI segment).
    pub guid: String,
    /// `ma-chan://<domain>/<guid>`.
    pub uri: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Topic.
    pub topic: String,
    /// Privacy.
    pub privacy: Privacy,
    /// Members (managers are members too).
    pub members: BTreeSet<String>,
    /// Managers.
    pub managers: BTreeSet<String>,
    /// Joined dialogs -> their user URI.
    pub joined: BTreeMap<DialogId, String>,
}

impl Room {
    /// Builds the in-memory room from its stored record.
    pub fn from_record(domain: &str, r: &RoomRecord) -> Room {
        let mut members: BTreeSet<String> = r.members.iter().cloned().collect();
        members.extend(r.managers.iter().cloned());
        Room {
            uri: crate::ids::room_uri(domain, &r.guid),
            guid: r.guid.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            topic: r.topic.clone(),
            privacy: Privacy::parse(&r.privacy).unwrap_or(Privacy::Secret),
            members,
            managers: r.managers.iter().cloned().collect(),
            joined: BTreeMap::new(),
        }
    }

    /// Distinct users online in the room, sorted.
    pub fn online_users(&self) -> BTreeSet<&str> {
        self.joined.values().map(String::as_str).collect()
    }

    /// Whether `user` has at least one joined dialog other than `except`.
    pub fn user_online_elsewhere(&self, user: &str, except: DialogId) -> bool {
        self.joined.iter().any(|(d, u)| *d != except && u == user)
    }
}

/// All rooms of the server, by GUID, with a case-insensitive name index.
#[derive(Debug, Default)]
pub struct Rooms {
    by_guid: BTreeMap<String, Room>,
    by_name: BTreeMap<String, String>,
}

impl Rooms {
    /// Inserts or replaces a room (keeps the joined set of an existing room).
    pub fn upsert(&mut self, mut room: Room) {
        if let Some(old) = self.by_guid.get(&room.guid) {
            room.joined = old.joined.clone();
            self.by_name.remove(&old.name.to_lowercase());
        }
        self.by_name
            .insert(room.name.to_lowercase(), room.guid.clone());
        self.by_guid.insert(room.guid.clone(), room);
    }

    /// The room with this GUID.
    pub fn get(&self, guid: &str) -> Option<&Room> {
        self.by_guid.get(guid)
    }

    /// Mutable access by GUID.
    pub fn get_mut(&mut self, guid: &str) -> Option<&mut Room> {
        self.by_guid.get_mut(guid)
    }

    /// The room named `name` (case-insensitive).
    pub fn by_name(&self, name: &str) -> Option<&Room> {
        self.by_name
            .get(&name.to_lowercase())
            .and_then(|g| self.by_guid.get(g))
    }

    /// All rooms, ordered by GUID.
    pub fn iter(&self) -> impl Iterator<Item = &Room> {
        self.by_guid.values()
    }

    /// All rooms ordered by name, case-insensitively (listing order of search results).
    pub fn by_name_order(&self) -> impl Iterator<Item = &Room> {
        self.by_name.values().filter_map(|g| self.by_guid.get(g))
    }

    /// Removes a dialog from every room it joined; returns, for each room it left,
    /// (room GUID, user) - with `last` true when that user has no other dialog there.
    pub fn leave_all(&mut self, dialog: DialogId) -> Vec<(String, String, bool)> {
        let mut left = Vec::new();
        for room in self.by_guid.values_mut() {
            if let Some(user) = room.joined.remove(&dialog) {
                let last = !room.joined.values().any(|u| *u == user);
                left.push((room.guid.clone(), user, last));
            }
        }
        left
    }

    /// Number of rooms.
    pub fn len(&self) -> usize {
        self.by_guid.len()
    }

    /// Whether there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.by_guid.is_empty()
    }
}
