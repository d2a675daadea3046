//! The Channel service's in-memory state: rooms (loaded from the store) and who is
//! online in each (joined dialogs), which rooms the users online here follow
//! ([`follows`]), plus the authorization rules.
//!
//! Rooms are kept in `BTreeMap`s so every listing and every fan-out happens in a
//! deterministic order (DESIGN.md determinism rules).

pub mod authz;
pub mod follows;

use crate::config::{CategoryConfig, DEFAULT_CATEGORY};
use crate::store::{RoomAttrs, RoomRecord};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::ids::DialogId;

/// A category (from the configuration): scope, creators and settings of its rooms.
#[derive(Debug, Clone)]
pub struct Category {
    /// Name (unique case-insensitively).
    pub name: String,
    /// `ma-cat://<domain>/<guid>` (GUID derived from the name).
    pub uri: String,
    /// Description.
    pub description: String,
    /// Scope: user URIs (lower-cased) and domains (`*@domain`, lower-cased).
    pub allowed: BTreeSet<String>,
    /// Out of scope whatever the lists say (same forms as `allowed`).
    pub denied: BTreeSet<String>,
    /// Who may create rooms here (same forms as `allowed`).
    pub creators: BTreeSet<String>,
    /// Invitations allowed.
    pub invitations: bool,
    /// File upload allowed.
    pub file_upload: bool,
    /// Chat history readable.
    pub history: bool,
}

impl Category {
    /// Builds the category from its configuration (`allowed` already defaulted).
    pub fn from_config(domain: &str, c: &CategoryConfig) -> Category {
        let set = |v: &[String]| v.iter().map(|u| u.to_lowercase()).collect();
        Category {
            uri: format!(
                "ma-cat://{domain}/{}",
                crate::ids::room_guid(domain, &format!("#category/{}", c.name))
            ),
            name: c.name.clone(),
            description: c.description.clone(),
            allowed: set(c.allowed.as_deref().unwrap_or(&[])),
            denied: set(&c.denied),
            creators: set(&c.creators),
            invitations: c.invitations,
            file_upload: c.file_upload,
            history: c.history,
        }
    }
}

/// A room: its stored attributes and roles plus the online participants.
#[derive(Debug, Clone)]
pub struct Room {
    /// GUID (last URI segment).
    pub guid: String,
    /// `ma-chan://<domain>/<guid>`.
    pub uri: String,
    /// Name, description, topic, privacy, category, type, invitations, disabled flag.
    pub attrs: RoomAttrs,
    /// Members, managers and presenters.
    pub roles: Roles,
    /// Joined dialogs -> their user URI.
    pub joined: BTreeMap<DialogId, String>,
}

/// Who has which role in a room (user URIs). Managers and presenters are members too:
/// `members` holds them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    /// Members (managers and presenters included).
    pub members: BTreeSet<String>,
    /// Managers.
    pub managers: BTreeSet<String>,
    /// Presenters.
    pub presenters: BTreeSet<String>,
}

impl Roles {
    /// The roles of a stored room (whose member list leaves out managers and presenters).
    pub fn from_stored(members: &[String], managers: &[String], presenters: &[String]) -> Roles {
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
        let mut all = set(members);
        all.extend(managers.iter().cloned());
        all.extend(presenters.iter().cloned());
        Roles {
            members: all,
            managers: set(managers),
            presenters: set(presenters),
        }
    }

    /// The member list to store: members that are neither managers nor presenters.
    pub fn stored_members(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|u| !self.managers.contains(*u) && !self.presenters.contains(*u))
            .cloned()
            .collect()
    }
}

impl Room {
    /// The room's joined dialogs but `except`, in dialog order (the dialogs a notice or
    /// relay caused by `except` goes to).
    pub fn joined_except(&self, except: DialogId) -> Vec<DialogId> {
        self.joined
            .keys()
            .copied()
            .filter(|d| *d != except)
            .collect()
    }

    /// Builds the in-memory room from its stored record (a room stored without a
    /// category is in the default one).
    pub fn from_record(domain: &str, r: &RoomRecord) -> Room {
        let mut attrs = r.attrs.clone();
        if attrs.category.is_empty() {
            attrs.category = DEFAULT_CATEGORY.to_string();
        }
        Room {
            uri: crate::ids::room_uri(domain, &r.guid),
            guid: r.guid.clone(),
            attrs,
            roles: Roles::from_stored(&r.members, &r.managers, &r.presenters),
            joined: BTreeMap::new(),
        }
    }

    /// The stored form of the room (members listed without managers and presenters).
    pub fn to_record(&self) -> RoomRecord {
        RoomRecord {
            guid: self.guid.clone(),
            attrs: self.attrs.clone(),
            members: self.roles.stored_members(),
            managers: self.roles.managers.iter().cloned().collect(),
            presenters: self.roles.presenters.iter().cloned().collect(),
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

/// All rooms of the server, by GUID, with a case-insensitive name index, and the
/// categories they belong to.
#[derive(Debug, Default)]
pub struct Rooms {
    by_guid: BTreeMap<String, Room>,
    by_name: BTreeMap<String, String>,
    categories: BTreeMap<String, Category>,
    /// Rooms followed by the users online here (candidates for `ntc:newcontent`).
    follows: follows::OnlineFollows,
}

impl Rooms {
    /// Adds or replaces a category.
    pub fn set_category(&mut self, c: Category) {
        self.categories.insert(c.name.to_lowercase(), c);
    }

    /// The category named `name` (case-insensitive).
    pub fn category(&self, name: &str) -> Option<&Category> {
        self.categories.get(&name.to_lowercase())
    }

    /// All categories, by lower-cased name.
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.categories.values()
    }

    /// The category of `room`; `None` when it names a category no longer configured
    /// (authorization then refuses everything: fail closed).
    pub fn category_of(&self, room: &Room) -> Option<&Category> {
        self.category(&room.attrs.category)
    }

    /// Inserts or replaces a room (keeps the joined set of an existing room).
    pub fn upsert(&mut self, mut room: Room) {
        if let Some(old) = self.by_guid.get(&room.guid) {
            room.joined = old.joined.clone();
            self.by_name.remove(&old.attrs.name.to_lowercase());
        }
        self.by_name
            .insert(room.attrs.name.to_lowercase(), room.guid.clone());
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

    /// Rooms followed by the users online on this server (see [`follows`]).
    pub fn follows(&self) -> &follows::OnlineFollows {
        &self.follows
    }

    /// Mutable access to [`Rooms::follows`].
    pub fn follows_mut(&mut self) -> &mut follows::OnlineFollows {
        &mut self.follows
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
