//! The Persistent Chat Store: rooms, memberships, chat history, followed rooms.
//!
//! A synchronous trait so the channel service can call it inline (DESIGN.md: in the
//! simulator store calls run on the host's task; SQLite is synchronous). The channel
//! service groups the writes of a batch of requests into one transaction
//! ([`Store::begin`] .. [`Store::commit`]) - group commit - and acknowledges posts only
//! after the commit returned.
//!
//! Implementations: [`sqlite::SqliteStore`] (single server, default). A PostgreSQL one
//! for pools is meant to sit behind the same trait.

pub mod faulty;
pub mod sqlite;

pub use faulty::FaultyStore;
pub use sqlite::SqliteStore;

/// A room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// Room GUID (the last segment of its `ma-chan://` URI).
    pub guid: String,
    /// Name, unique case-insensitively.
    pub name: String,
    /// Description.
    pub description: String,
    /// Topic.
    pub topic: String,
    /// `open` | `closed` | `secret`.
    pub privacy: String,
    /// Member SIP URIs, sorted.
    pub members: Vec<String>,
    /// Manager SIP URIs, sorted.
    pub managers: Vec<String>,
}

/// A chat message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Room GUID.
    pub room_guid: String,
    /// Author SIP URI (set by the server from the dialog, never by the client).
    pub author: String,
    /// Server time of the post, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Message text as posted (unescaped).
    pub text: String,
}

/// A chat message read back from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Store-assigned id, increasing in commit order across the store.
    pub id: i64,
    /// Room GUID.
    pub room_guid: String,
    /// Author SIP URI.
    pub author: String,
    /// ms since the Unix epoch.
    pub ts_ms: i64,
    /// Text.
    pub text: String,
}

/// A store failure. Every variant means "nothing of the failed call was kept".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error (I/O, busy, constraint, corruption).
    #[error("store: {0}")]
    Db(String),
    /// The schema on disk is newer than this binary knows.
    #[error("store schema version {found} is newer than supported {supported}")]
    SchemaTooNew {
        /// Version found on disk.
        found: i64,
        /// Newest version this binary migrates to.
        supported: i64,
    },
}

/// Persistent Chat Store operations. All methods are synchronous.
pub trait Store: Send {
    /// Opens a write transaction (group commit: many requests' writes, one commit).
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Commits the open transaction durably (WAL fsync per the store's sync mode).
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Discards the open transaction, if any.
    fn rollback(&mut self);
    /// Creates the room or updates its fields and replaces its member/manager lists.
    fn upsert_room(&mut self, room: &RoomRecord) -> Result<(), StoreError>;
    /// All rooms, ordered by name (case-insensitive).
    fn load_rooms(&mut self) -> Result<Vec<RoomRecord>, StoreError>;
    /// Appends a message; returns its id.
    fn append_message(&mut self, msg: &NewMessage) -> Result<i64, StoreError>;
    /// The last `n` messages of a room, oldest first.
    fn last_messages(&mut self, room_guid: &str, n: u32) -> Result<Vec<StoredMessage>, StoreError>;
    /// Number of messages in a room.
    fn message_count(&mut self, room_guid: &str) -> Result<u64, StoreError>;
    /// Adds a room to a user's followed list (idempotent).
    fn follow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError>;
    /// Removes a room from a user's followed list (idempotent).
    fn unfollow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError>;
    /// A user's followed rooms (GUIDs), in the order they were followed.
    fn followed(&mut self, user: &str) -> Result<Vec<String>, StoreError>;
}
