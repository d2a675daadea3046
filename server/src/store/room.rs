//! A room's attributes as one typed value ([`RoomAttrs`]): what the store's `rooms` row
//! holds and what the channel service's in-memory room holds, by composition
//! ([`super::RoomRecord`], `channel::Room`), with the text <-> enum conversions of the
//! stored columns in this one place.

use crate::config::{Invitations, Privacy, RoomType};

/// A room's attributes: everything but its GUID, its roles and who is online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomAttrs {
    /// Name, unique case-insensitively.
    pub name: String,
    /// Description.
    pub description: String,
    /// Topic.
    pub topic: String,
    /// Who may find and join.
    pub privacy: Privacy,
    /// Category name (`""` for rooms stored before categories existed: the default).
    pub category: String,
    /// Who may post.
    pub room_type: RoomType,
    /// Invitations setting.
    pub invitations: Invitations,
    /// Disabled flag.
    pub disabled: bool,
}

/// The text columns of a `rooms` row after `guid`, in table order: name, description,
/// topic, privacy, category, room_type, invitations.
pub type RoomColumns = [String; 7];

impl RoomAttrs {
    /// An open `normal` room `name` of the default category (stored as `""`), with no
    /// description or topic and the inherited invitations setting.
    pub fn open(name: &str) -> RoomAttrs {
        RoomAttrs {
            name: name.into(),
            description: String::new(),
            topic: String::new(),
            privacy: Privacy::Open,
            category: String::new(),
            room_type: RoomType::Normal,
            invitations: Invitations::Inherit,
            disabled: false,
        }
    }

    /// The attributes of a row as read (`text`: [`RoomColumns`]). A privacy, type or
    /// invitations value this version does not know fails closed: `secret`,
    /// `auditorium`, `off` (the most restrictive choice).
    pub fn from_columns(text: RoomColumns, disabled: bool) -> RoomAttrs {
        let [name, description, topic, privacy, category, room_type, invitations] = text;
        RoomAttrs {
            name,
            description,
            topic,
            privacy: Privacy::parse(&privacy).unwrap_or(Privacy::Secret),
            category,
            room_type: RoomType::parse(&room_type).unwrap_or(RoomType::Auditorium),
            invitations: Invitations::parse(&invitations).unwrap_or(Invitations::Off),
            disabled,
        }
    }

    /// The text columns to store ([`RoomColumns`] order; `disabled` is stored as is).
    pub fn columns(&self) -> [&str; 7] {
        [
            &self.name,
            &self.description,
            &self.topic,
            self.privacy.as_str(),
            &self.category,
            self.room_type.as_str(),
            self.invitations.as_str(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_and_unknown_values_fail_closed() {
        let a = RoomAttrs {
            privacy: Privacy::Closed,
            room_type: RoomType::Auditorium,
            invitations: Invitations::On,
            category: "Product".into(),
            ..RoomAttrs::open("Design")
        };
        let text = a.columns().map(String::from);
        assert_eq!(RoomAttrs::from_columns(text, false), a);
        let odd = ["R", "", "", "public", "", "webinar", "maybe"].map(String::from);
        let b = RoomAttrs::from_columns(odd, true);
        assert_eq!(
            (b.privacy, b.room_type, b.invitations, b.disabled),
            (
                Privacy::Secret,
                RoomType::Auditorium,
                Invitations::Off,
                true
            )
        );
    }
}
