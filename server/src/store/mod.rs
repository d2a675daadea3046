//! The Persistent Chat Store: rooms, memberships, chat history, followed rooms (with
//! read markers), preferences and invitations.
//!
//! A synchronous trait so the channel service can call it inline (DESIGN.md: in the
//! simulator store calls run on the host's task; SQLite is synchronous). The channel
//! service groups the writes of a batch of requests into one transaction
//! ([`Store::begin`] .. [`Store::commit`]) - group commit - and acknowledges posts only
//! after the commit returned.
//!
//! Implementations: [`sqlite::SqliteStore`] (single server, the embedded default,
//! `[store] path`) and [`postgres::PgStore`] (a pool of servers sharing one store,
//! `[store] url`; docs/pool.md). [`open`] picks one from the configuration.
//!
//! The pool's shared log (`room_log`, [`Store::log_append`]) and the members' leases
//! ([`Store::lease_renew`]) are in both, so the pool code is the same on either.

pub mod bell;
pub mod faulty;
pub mod pg_harness;
pub mod postgres;
pub mod room;
pub mod schema;
pub mod sql;
pub mod sqlite;
#[cfg(test)]
mod suite_tests;

pub use self::postgres::PgStore;
pub use bell::{BellHook, CommitBell};
pub use faulty::{FaultyStore, HookedStore, StoreHook, StoreOp};
pub use room::{RoomAttrs, RoomColumns};
pub use sql::Arg;
pub use sqlite::SqliteStore;

/// Opens the store `cfg` names: PostgreSQL when `[store] url` is set (a pool member),
/// else the SQLite file `[store] path`. Both are migrated to the current schema.
/// Errors: [`StoreError`] (connection refused, bad URL, I/O, schema too new).
pub fn open(cfg: &crate::config::StoreConfig) -> Result<Box<dyn Store>, StoreError> {
    match &cfg.url {
        Some(url) => Ok(Box::new(PgStore::connect(url)?)),
        None => Ok(Box::new(SqliteStore::open(&cfg.path)?)),
    }
}

/// What a pool log entry records (`room_log.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// A post (`messages` row `msg_id`).
    Chat,
    /// A user's first dialog joined the room (`cmd:join`).
    Join,
    /// The same, by `cmd:bjoin` (sign-in).
    BJoin,
    /// A user's last dialog left the room (part, BYE, close, expiry, or the member died).
    Part,
    /// The room's record changed (`cmd:updateroom`, also through the web API): the
    /// other members reload it (`crate::pool`).
    Room,
}

impl LogKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Chat => "chat",
            LogKind::Join => "join",
            LogKind::BJoin => "bjoin",
            LogKind::Part => "part",
            LogKind::Room => "room",
        }
    }

    /// The kind of a stored name (`None`: not written by this code).
    pub fn parse(s: &str) -> Option<LogKind> {
        Some(match s {
            "chat" => LogKind::Chat,
            "join" => LogKind::Join,
            "bjoin" => LogKind::BJoin,
            "part" => LogKind::Part,
            "room" => LogKind::Room,
            _ => return None,
        })
    }
}

/// The one `COUNT(*)` of a counting query, as a `u64` (a negative or missing count
/// reads as 0).
fn count(rows: Result<Vec<i64>, StoreError>) -> Result<u64, StoreError> {
    Ok(rows?.first().map_or(0, |&n| n.max(0) as u64))
}

/// What a room's pool log entry says: which room, who wrote it, what happened to whom
/// and when - the part its write ([`NewLogEntry`]) and its read ([`LogEntry`]) share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// Room GUID.
    pub room_guid: String,
    /// `[pool] server_id` of the member that wrote it.
    pub origin: String,
    /// The dialog (on `origin`) that caused it, 0 if none: that member does not relay
    /// the entry back to it.
    pub dialog: i64,
    /// What happened.
    pub kind: LogKind,
    /// Who (SIP URI).
    pub user: String,
    /// When, ms since the Unix epoch.
    pub ts_ms: i64,
}

/// An entry to append to a room's pool log ([`Store::log_append`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogEntry {
    /// Room, writer, kind, user, time.
    pub head: LogHead,
    /// The post's `messages` id ([`LogKind::Chat`]).
    pub msg_id: Option<i64>,
}

/// An entry read back from a room's pool log ([`Store::log_after`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The room's sequence number: 1, 2, ... in the store's commit order.
    pub seq: i64,
    /// Room, writer, kind, user, time.
    pub head: LogHead,
    /// The post's text ([`LogKind::Chat`]; empty otherwise).
    pub text: String,
}

use crate::compliance::{Event, EventKind, NewEvent};

/// A room as stored: the `rooms` row and its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// Room GUID (the last segment of its `ma-chan://` URI).
    pub guid: String,
    /// The row's attributes.
    pub attrs: RoomAttrs,
    /// Member SIP URIs, sorted.
    pub members: Vec<String>,
    /// Manager SIP URIs, sorted.
    pub managers: Vec<String>,
    /// Presenter SIP URIs, sorted.
    pub presenters: Vec<String>,
}

/// Which messages of a room a history read wants (`cmd:bccontext` `<bcq>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The newest messages.
    Last,
    /// The newest messages with an id below this one.
    Before(i64),
    /// The oldest messages at or after this time (ms since the Unix epoch).
    Since(i64),
    /// The newest messages matching every given criterion.
    Search {
        /// Case-insensitive substring of the text (empty: any).
        keyword: String,
        /// Exact author URI, case-insensitive (`None`: any).
        author: Option<String>,
        /// Earliest time, ms (inclusive).
        from_ms: Option<i64>,
        /// Latest time, ms (inclusive).
        to_ms: Option<i64>,
    },
}

/// A file posted to a room over the web service (`crate::web`); its bytes are in the
/// file store under `sha256` (`crate::files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Room GUID.
    pub room_guid: String,
    /// File name in the room (no path separators, see `crate::files::check_name`).
    pub name: String,
    /// SHA-256 of the content, lower-case hex (the file store key).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Uploader's SIP URI.
    pub uploader: String,
    /// Upload time, ms since the Unix epoch.
    pub ts_ms: i64,
}

/// A user preference (`cmd:getpref`/`cmd:setpref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pref {
    /// Version, incremented by every write (starts at 1).
    pub seqid: u64,
    /// Content as sent (base64 text).
    pub content: String,
}

/// A session in the open-sessions ledger: `user` is online in the room (a JOIN event
/// was recorded and its PART not yet). See [`Store::open_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    /// User URI (`sip:user@domain`).
    pub user: String,
    /// Room URI (`ma-chan://domain/guid`).
    pub room_uri: String,
    /// Room name when the session opened (for the PART event).
    pub room_name: String,
}

impl RoomRecord {
    /// An open `normal` room `name` with no members, of the default category, with
    /// the inherited invitations setting (fixtures).
    pub fn open(guid: &str, name: &str) -> RoomRecord {
        RoomRecord {
            guid: guid.into(),
            attrs: RoomAttrs::open(name),
            members: vec![],
            managers: vec![],
            presenters: vec![],
        }
    }
}

impl OpenSession {
    /// The PART event that closes this session at `ts_ms` (a crashed server's sessions,
    /// closed when it or another pool member cleans up after it).
    pub fn part_event(&self, ts_ms: i64) -> NewEvent {
        NewEvent {
            kind: EventKind::Part,
            room_uri: self.room_uri.clone(),
            room_name: self.room_name.clone(),
            user: self.user.clone(),
            ts_ms,
            content: String::new(),
        }
    }
}

/// An invitation to a room (created when a user is added to a room whose
/// invitations are on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Store-assigned id, increasing.
    pub id: i64,
    /// Room GUID.
    pub room_guid: String,
    /// Who added the user.
    pub inviter: String,
    /// When, ms since the Unix epoch.
    pub ts_ms: i64,
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
    /// The client message id (grpchat `msgid`, design): unique per author; a second
    /// message with the same author and id is refused by the store.
    pub client_msgid: Option<String>,
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
    /// Runs one write statement of [`sql`] with `args` bound to `$1`, `$2`, ... (in the
    /// open transaction, else in one of its own); returns the number of rows changed.
    /// Only for the statements of [`sql`]: the methods below that are one of them.
    fn sql_exec(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<u64, StoreError>;
    /// Runs one query of [`sql`] with `args` bound; its rows in order.
    fn sql_query(&mut self, sql: &'static str, args: Vec<Arg>)
        -> Result<Vec<sql::Row>, StoreError>;
    /// Runs one query of [`sql`] whose rows are one text column; the values in order.
    fn sql_strings(
        &mut self,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<Vec<String>, StoreError> {
        self.sql_query(sql, args)?
            .iter()
            .map(|r| r.text(0))
            .collect()
    }
    /// Runs one query of [`sql`] whose rows are one integer column; the values in order.
    fn sql_ints(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<Vec<i64>, StoreError> {
        self.sql_query(sql, args)?
            .iter()
            .map(|r| r.int(0))
            .collect()
    }
    /// The last `n` messages of a room, oldest first.
    fn last_messages(&mut self, room_guid: &str, n: u32) -> Result<Vec<StoredMessage>, StoreError> {
        self.history(room_guid, &HistoryQuery::Last, n)
    }
    /// At most `n` messages of a room selected by `q`, oldest first.
    fn history(
        &mut self,
        room_guid: &str,
        q: &HistoryQuery,
        n: u32,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Number of messages in a room.
    fn message_count(&mut self, room_guid: &str) -> Result<u64, StoreError> {
        count(self.sql_ints(sql::MESSAGE_COUNT, vec![room_guid.into()]))
    }
    /// Adds a room to a user's followed list (idempotent).
    fn follow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError>;
    /// Removes a room from a user's followed list (idempotent).
    fn unfollow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.sql_exec(sql::UNFOLLOW, vec![user.into(), room_guid.into()])
            .map(drop)
    }
    /// A user's followed rooms (GUIDs), in the order they were followed.
    fn followed(&mut self, user: &str) -> Result<Vec<String>, StoreError> {
        self.sql_strings(sql::FOLLOWED, vec![user.into()])
    }
    /// Opens a savepoint inside the current transaction (or a transaction of its own):
    /// the writes of one action and its compliance event are kept or undone together.
    fn savepoint(&mut self) -> Result<(), StoreError>;
    /// Closes the innermost savepoint: keeps its writes (`keep`) or undoes them.
    fn release_savepoint(&mut self, keep: bool) -> Result<(), StoreError>;
    /// Appends a compliance event to the outbox (transactional outbox: call it inside the
    /// action's transaction); returns its id, unique and never reused.
    fn record_event(&mut self, ev: &NewEvent) -> Result<i64, StoreError>;
    /// The id of the message `author` posted with client message id `client_msgid`,
    /// if there is one (grpchat `msgid` de-duplication across dialogs and restarts).
    fn find_client_message(
        &mut self,
        author: &str,
        client_msgid: &str,
    ) -> Result<Option<i64>, StoreError> {
        let args = vec![author.into(), client_msgid.into()];
        Ok(self
            .sql_ints(sql::FIND_CLIENT_MESSAGE, args)?
            .first()
            .copied())
    }
    /// Notes in the open-sessions ledger that `s.user` is online in `s.room_uri` on
    /// `server` (written with the JOIN event, in its transaction; idempotent).
    fn open_session(&mut self, server: &str, s: &OpenSession) -> Result<(), StoreError>;
    /// Removes a ledger entry (written with the PART event; absent entries are ignored).
    fn close_session(
        &mut self,
        server: &str,
        user: &str,
        room_uri: &str,
    ) -> Result<(), StoreError> {
        let args = vec![server.into(), user.into(), room_uri.into()];
        self.sql_exec(sql::CLOSE_SESSION, args).map(drop)
    }
    /// The ledger entries of `server`, sorted by user then room. At start-up these are
    /// the sessions a previous run of the server left open (it crashed).
    fn open_sessions(&mut self, server: &str) -> Result<Vec<OpenSession>, StoreError> {
        let rows = self.sql_query(sql::OPEN_SESSIONS, vec![server.into()])?;
        rows.iter().map(sql::open_session).collect()
    }
    /// Users with an entry in the open-sessions ledger for room `room_uri` on any
    /// server, sorted, each once (a pool's online participants).
    fn room_sessions(&mut self, room_uri: &str) -> Result<Vec<String>, StoreError> {
        self.sql_strings(sql::ROOM_SESSIONS, vec![room_uri.into()])
    }
    /// Up to `limit` outbox events, lowest id first.
    fn outbox_peek(&mut self, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = self.sql_query(sql::OUTBOX_PEEK, vec![i64::from(limit).into()])?;
        rows.iter().map(sql::event).collect()
    }
    /// Deletes outbox events by id (ids not present are ignored).
    fn outbox_delete(&mut self, ids: &[i64]) -> Result<(), StoreError>;
    /// The highest event id ever assigned (0 if none): ids `1..=high_water` exist.
    fn event_high_water(&mut self) -> Result<i64, StoreError>;
    /// Up to `limit` messages with id above `after_id`, lowest id first (all rooms).
    fn messages_after(
        &mut self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let args = vec![after_id.into(), i64::from(limit).into()];
        let rows = self.sql_query(sql::MESSAGES_AFTER, args)?;
        rows.iter().map(sql::message).collect()
    }
    /// Replaces a user's followed list with `room_guids`, in that order (read markers of
    /// rooms still followed are kept).
    fn set_followed(&mut self, user: &str, room_guids: &[String]) -> Result<(), StoreError>;
    /// Users following a room, sorted.
    fn followers(&mut self, room_guid: &str) -> Result<Vec<String>, StoreError> {
        self.sql_strings(sql::FOLLOWERS, vec![room_guid.into()])
    }
    /// Marks every message of the room as read by `user` (if the user follows it).
    fn mark_read(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.sql_exec(sql::MARK_READ, vec![user.into(), room_guid.into()])
            .map(drop)
    }
    /// Messages of the room newer than `user`'s read marker; `None` when `user` does
    /// not follow the room.
    fn unread_count(&mut self, user: &str, room_guid: &str) -> Result<Option<u64>, StoreError> {
        let n = self.sql_ints(sql::UNREAD_COUNT, vec![user.into(), room_guid.into()])?;
        Ok(n.first().map(|&n| u64::try_from(n).unwrap_or(0)))
    }
    /// A user's preference `label`, if set.
    fn get_pref(&mut self, user: &str, label: &str) -> Result<Option<Pref>, StoreError> {
        let rows = self.sql_query(sql::GET_PREF, vec![user.into(), label.into()])?;
        rows.first().map(sql::pref).transpose()
    }
    /// Stores a preference; returns its new version.
    fn set_pref(&mut self, user: &str, label: &str, content: &str) -> Result<u64, StoreError>;
    /// Records an invitation of `user` to a room (one unseen invitation per room).
    fn add_invitation(
        &mut self,
        user: &str,
        room_guid: &str,
        inviter: &str,
        ts_ms: i64,
    ) -> Result<(), StoreError> {
        let args = vec![user.into(), room_guid.into(), inviter.into(), ts_ms.into()];
        self.sql_exec(sql::ADD_INVITATION, args).map(drop)
    }
    /// `user`'s unseen invitations, oldest first.
    fn invitations(&mut self, user: &str) -> Result<Vec<Invitation>, StoreError> {
        let rows = self.sql_query(sql::INVITATIONS, vec![user.into()])?;
        rows.iter().map(sql::invitation).collect()
    }
    /// Marks `user`'s invitations to a room as seen.
    fn mark_invitation_seen(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        let args = vec![user.into(), room_guid.into()];
        self.sql_exec(sql::MARK_INVITATION_SEEN, args).map(drop)
    }
    /// Records a posted file (replaces an earlier file of the same name in the room).
    fn put_file(&mut self, file: &FileRecord) -> Result<(), StoreError>;
    /// The file `name` of a room, if posted.
    fn get_file(&mut self, room_guid: &str, name: &str) -> Result<Option<FileRecord>, StoreError> {
        let rows = self.sql_query(sql::GET_FILE, vec![room_guid.into(), name.into()])?;
        rows.first().map(sql::file).transpose()
    }
    /// Appends an entry to its room's pool log with the room's next sequence number
    /// (returned). The room's row stays locked until the transaction ends, so a room's
    /// sequence numbers commit in order; on PostgreSQL the commit also notifies the
    /// members (`NOTIFY pchat_pool`). Errors: no such room, or the store failed.
    fn log_append(&mut self, e: &NewLogEntry) -> Result<i64, StoreError>;
    /// Every room's last committed log sequence number (0: none yet), by room GUID.
    fn log_heads(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.sql_query(sql::LOG_HEADS, vec![])?;
        rows.iter().map(|r| Ok((r.text(0)?, r.int(1)?))).collect()
    }
    /// Up to `limit` log entries of a room with sequence above `after_seq`, in order.
    fn log_after(
        &mut self,
        room_guid: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let args = vec![room_guid.into(), after_seq.into(), i64::from(limit).into()];
        let rows = self.sql_query(sql::LOG_AFTER, args)?;
        rows.iter().map(sql::log_entry).collect()
    }
    /// Renews (or takes) member `server`'s lease until `until_ms` (ms since the epoch).
    fn lease_renew(&mut self, server: &str, until_ms: i64) -> Result<(), StoreError> {
        self.sql_exec(sql::LEASE_RENEW, vec![server.into(), until_ms.into()])
            .map(drop)
    }
    /// Members whose lease ended before `now_ms`, sorted.
    fn lease_expired(&mut self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.sql_strings(sql::LEASE_EXPIRED, vec![now_ms.into()])
    }
    /// Claims an expired member: deletes its lease if it still ended before `now_ms`.
    /// `true` for exactly one claimant (the row is locked until the transaction ends;
    /// the others then find it gone).
    fn lease_claim(&mut self, server: &str, now_ms: i64) -> Result<bool, StoreError> {
        Ok(self.sql_exec(sql::LEASE_CLAIM, vec![server.into(), now_ms.into()])? > 0)
    }
    /// Takes or renews the pool-wide lease of `role` (e.g. [`COMPLIANCE_ROLE`]) for
    /// holder `who`; `at` = (now, until), ms since the epoch: `true` if `who` has it
    /// now, until `until` - it was free, its lease ended before `now`, or it was
    /// `who`'s already; `false` if another holder's lease still runs. One holder at a
    /// time across the pool (one row per role, written atomically). Errors: the store
    /// failed.
    fn role_lease(&mut self, role: &str, who: &str, at: (i64, i64)) -> Result<bool, StoreError> {
        let args = vec![role.into(), who.into(), at.0.into(), at.1.into()];
        Ok(self.sql_exec(sql::ROLE_LEASE, args)? > 0)
    }
    /// Gives up `holder`'s lease of `role` (no-op if it is not `holder`'s), so another
    /// holder can take it at once. Errors: the store failed.
    fn role_release(&mut self, role: &str, holder: &str) -> Result<(), StoreError> {
        self.sql_exec(sql::ROLE_RELEASE, vec![role.into(), holder.into()])
            .map(|_| ())
    }
}

/// The role of the pool's one exporting compliance worker ([`Store::role_lease`]).
pub const COMPLIANCE_ROLE: &str = "compliance-worker";
