//! The SQL both stores run unchanged, the statement arguments that carry it across
//! backends ([`Arg`]) and the rows it reads ([`Row`], with the row mappers both
//! backends use). Statements use PostgreSQL's `$1`, `$2`, ... placeholders; SQLite reads
//! them as its `?1`, `?2`, ... ([`sqlite_placeholders`]: `$NNN` in SQLite is a named
//! parameter numbered by first appearance, not by its digits). The
//! [`Store`](super::Store) methods that are one of these statements are provided by the
//! trait on top of the two primitives [`Store::sql_exec`](super::Store::sql_exec) and
//! [`Store::sql_query`](super::Store::sql_query); the backends implement only those.

use super::{
    FileRecord, Invitation, LogEntry, LogHead, LogKind, OpenSession, Pref, StoreError,
    StoredMessage,
};
use crate::compliance::{Event, EventKind, NewEvent};
use std::borrow::Cow;

/// One bound argument of a shared statement (owned: PostgreSQL runs it on its
/// connection thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `TEXT`.
    Text(String),
    /// `INTEGER` / `BIGINT`.
    Int(i64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg::Text(s.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Arg {
        Arg::Int(n)
    }
}

/// One column value of a row of a shared query (what both backends' column types of
/// the shared tables read as: `TEXT`, `INTEGER`/`BIGINT`, `NULL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `NULL`.
    Null,
    /// An integer column.
    Int(i64),
    /// A text column.
    Text(String),
}

/// A row of a shared query, read by 0-based column index; the shared row mappers below
/// turn rows into the store's records for either backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn col(&self, i: usize) -> Result<&Value, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Db(format!("no column {i} in the row")))
    }

    /// Column `i` as text. Errors: absent, `NULL` or not text.
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.col(i)? {
            Value::Text(t) => Ok(t.clone()),
            v => Err(StoreError::Db(format!("column {i} is {v:?}, not text"))),
        }
    }

    /// Column `i` as an integer. Errors: absent, `NULL` or not an integer.
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.col(i)? {
            Value::Int(n) => Ok(*n),
            v => Err(StoreError::Db(format!(
                "column {i} is {v:?}, not an integer"
            ))),
        }
    }

    /// Columns `idx` as text, in that order. Errors: as [`Row::text`].
    pub fn texts<const N: usize>(&self, idx: [usize; N]) -> Result<[String; N], StoreError> {
        let mut out: [String; N] = std::array::from_fn(|_| String::new());
        for (o, i) in out.iter_mut().zip(idx) {
            *o = self.text(i)?;
        }
        Ok(out)
    }

    /// Column `i` as a count or size (a negative value reads as 0).
    pub fn count(&self, i: usize) -> Result<u64, StoreError> {
        Ok(self.int(i)?.max(0) as u64)
    }
}

/// A message row `(id, room_guid, author, ts_ms, text)`.
pub fn message(r: &Row) -> Result<StoredMessage, StoreError> {
    let [room_guid, author, text] = r.texts([1, 2, 4])?;
    let (id, ts_ms) = (r.int(0)?, r.int(3)?);
    Ok(StoredMessage {
        id,
        room_guid,
        author,
        ts_ms,
        text,
    })
}

/// An outbox row `(id, kind, room_uri, room_name, user_uri, ts_ms, content)`; an unknown
/// kind is an error (the row was not written by this code).
pub fn event(r: &Row) -> Result<Event, StoreError> {
    let [kind, room_uri, room_name, user, content] = r.texts([1, 2, 3, 4, 6])?;
    let kind = EventKind::parse(&kind)
        .ok_or_else(|| StoreError::Db(format!("unknown event kind {kind:?}")))?;
    let ts_ms = r.int(5)?;
    let ev = NewEvent {
        kind,
        room_uri,
        room_name,
        user,
        ts_ms,
        content,
    };
    Ok(Event::new(r.int(0)?, ev))
}

/// A pool log row `(seq, room_guid, origin, dialog, kind, user_uri, ts_ms, text)`.
pub fn log_entry(r: &Row) -> Result<LogEntry, StoreError> {
    let [room_guid, origin, kind, user, text] = r.texts([1, 2, 4, 5, 7])?;
    let kind = LogKind::parse(&kind)
        .ok_or_else(|| StoreError::Db(format!("unknown log kind {kind:?}")))?;
    let (seq, dialog, ts_ms) = (r.int(0)?, r.int(3)?, r.int(6)?);
    Ok(LogEntry {
        seq,
        head: LogHead {
            room_guid,
            origin,
            dialog,
            kind,
            user,
            ts_ms,
        },
        text,
    })
}

/// An open-sessions row `(user_uri, room_uri, room_name)`.
pub fn open_session(r: &Row) -> Result<OpenSession, StoreError> {
    let [user, room_uri, room_name] = r.texts([0, 1, 2])?;
    Ok(OpenSession {
        user,
        room_uri,
        room_name,
    })
}

/// An invitation row `(id, room_guid, inviter, ts_ms)`.
pub fn invitation(r: &Row) -> Result<Invitation, StoreError> {
    let [room_guid, inviter] = r.texts([1, 2])?;
    let (id, ts_ms) = (r.int(0)?, r.int(3)?);
    Ok(Invitation {
        id,
        room_guid,
        inviter,
        ts_ms,
    })
}

/// A preference row `(seqid, content)`.
pub fn pref(r: &Row) -> Result<Pref, StoreError> {
    let (seqid, content) = (r.count(0)?, r.text(1)?);
    Ok(Pref { seqid, content })
}

/// A file row `(room_guid, name, sha256, size, uploader, ts_ms)`.
pub fn file(r: &Row) -> Result<FileRecord, StoreError> {
    let [room_guid, name, sha256, uploader] = r.texts([0, 1, 2, 4])?;
    let (size, ts_ms) = (r.count(3)?, r.int(5)?);
    Ok(FileRecord {
        room_guid,
        name,
        sha256,
        size,
        uploader,
        ts_ms,
    })
}

/// `sql` with every `$N` placeholder written `?N` (SQLite's numbered form).
pub fn sqlite_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if numbered { '?' } else { c });
    }
    Cow::Owned(out)
}

/// [`sqlite_placeholders`] for the SQL constants of this module, rewritten once per
/// process and kept (the set is finite: every argument is a `&'static str`), so the
/// per-call paths neither scan nor allocate.
pub fn sqlite_static(sql: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<(usize, usize), &'static str>>> = OnceLock::new();
    if !sql.contains('$') {
        return sql;
    }
    let key = (sql.as_ptr() as usize, sql.len());
    let cache = CACHE.get_or_init(Default::default);
    let mut map = match cache.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(key)
        .or_insert_with(|| Box::leak(sqlite_placeholders(sql).into_owned().into_boxed_str()))
}

/// Opens the savepoint of one action (`Store::savepoint`).
pub const SAVEPOINT: &str = "SAVEPOINT action";

/// Pops one level off a savepoint depth: `false` (nothing to release) when it is 0.
pub fn pop_savepoint(depth: &mut u32) -> bool {
    let open = *depth > 0;
    *depth = depth.saturating_sub(1);
    open
}

/// The statement that closes the innermost action savepoint: keeps its writes (`keep`)
/// or undoes them (`Store::release_savepoint`).
pub fn release_savepoint(keep: bool) -> &'static str {
    if keep {
        "RELEASE action"
    } else {
        "ROLLBACK TO action; RELEASE action"
    }
}

/// Messages of a room (`Store::message_count`).
pub const MESSAGE_COUNT: &str = "SELECT COUNT(*) FROM messages WHERE room_guid = $1";
/// `Store::unfollow`.
pub const UNFOLLOW: &str = "DELETE FROM followed WHERE user_uri = $1 AND room_guid = $2";
/// `Store::followed`, in follow order.
pub const FOLLOWED: &str = "SELECT room_guid FROM followed WHERE user_uri = $1 ORDER BY seq";
/// `Store::followers`.
pub const FOLLOWERS: &str = "SELECT user_uri FROM followed WHERE room_guid = $1 ORDER BY user_uri";
/// `Store::mark_read`: the read marker moves to the room's newest message.
pub const MARK_READ: &str = "UPDATE followed SET last_read_id =
       (SELECT COALESCE(MAX(id), 0) FROM messages WHERE room_guid = $2)
     WHERE user_uri = $1 AND room_guid = $2";
/// `Store::unread_count`: messages newer than the user's read marker; no row when the
/// user does not follow the room.
pub const UNREAD_COUNT: &str = "SELECT (SELECT COUNT(*) FROM messages m
         WHERE m.room_guid = f.room_guid AND m.id > f.last_read_id)
     FROM followed f WHERE f.user_uri = $1 AND f.room_guid = $2";
/// `Store::find_client_message`.
pub const FIND_CLIENT_MESSAGE: &str =
    "SELECT id FROM messages WHERE author = $1 AND client_msgid = $2";
/// `Store::close_session`.
pub const CLOSE_SESSION: &str =
    "DELETE FROM open_sessions WHERE server = $1 AND user_uri = $2 AND room_uri = $3";
/// `Store::room_sessions`.
pub const ROOM_SESSIONS: &str =
    "SELECT DISTINCT user_uri FROM open_sessions WHERE room_uri = $1 ORDER BY user_uri";
/// `Store::add_invitation`: one unseen invitation per user and room.
pub const ADD_INVITATION: &str = "INSERT INTO invitations (user_uri, room_guid, inviter, ts_ms)
     SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM invitations
       WHERE user_uri = $1 AND room_guid = $2 AND seen = 0)";
/// `Store::mark_invitation_seen`.
pub const MARK_INVITATION_SEEN: &str =
    "UPDATE invitations SET seen = 1 WHERE user_uri = $1 AND room_guid = $2 AND seen = 0";
/// `Store::lease_renew`.
pub const LEASE_RENEW: &str = "INSERT INTO pool_members (server, lease_until_ms) VALUES ($1, $2)
     ON CONFLICT (server) DO UPDATE SET lease_until_ms = excluded.lease_until_ms";
/// `Store::lease_expired`.
pub const LEASE_EXPIRED: &str =
    "SELECT server FROM pool_members WHERE lease_until_ms < $1 ORDER BY server";
/// `Store::lease_claim`: removes the expired lease; the member whose delete removed it
/// owns the cleanup.
pub const LEASE_CLAIM: &str = "DELETE FROM pool_members WHERE server = $1 AND lease_until_ms < $2";
/// `Store::role_lease` (`$1` role, `$2` holder, `$3` now, `$4` until, ms): a row is
/// written only if the role is free, its lease ended, or it is the holder's already.
pub const ROLE_LEASE: &str = "INSERT INTO pool_roles (role, holder, until_ms) VALUES ($1, $2, $4)
     ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
     WHERE pool_roles.holder = excluded.holder OR pool_roles.until_ms < $3";
/// `Store::role_release`: drops the holder's lease of the role (no-op otherwise).
pub const ROLE_RELEASE: &str = "DELETE FROM pool_roles WHERE role = $1 AND holder = $2";
/// Users of a room with role `$2` (`member` | `manager`), sorted.
pub const ROLES: &str =
    "SELECT user_uri FROM room_roles WHERE room_guid = $1 AND role = $2 ORDER BY user_uri";
/// Presenters of a room, sorted.
pub const PRESENTERS: &str =
    "SELECT user_uri FROM room_presenters WHERE room_guid = $1 ORDER BY user_uri";

/// A room's member and manager roles (`Store::upsert_room` rewrites them).
pub const DELETE_ROLES: &str = "DELETE FROM room_roles WHERE room_guid = $1";
/// A room's presenters (`Store::upsert_room` rewrites them).
pub const DELETE_PRESENTERS: &str = "DELETE FROM room_presenters WHERE room_guid = $1";
/// `Store::get_file`.
pub const GET_FILE: &str = "SELECT room_guid, name, sha256, size, uploader, ts_ms FROM files
     WHERE room_guid = $1 AND name = $2";
/// `Store::open_sessions`.
pub const OPEN_SESSIONS: &str = "SELECT user_uri, room_uri, room_name FROM open_sessions
     WHERE server = $1 ORDER BY user_uri, room_uri";
/// `Store::get_pref`.
pub const GET_PREF: &str = "SELECT seqid, content FROM prefs WHERE user_uri = $1 AND label = $2";
/// `Store::invitations`: unseen, oldest first.
pub const INVITATIONS: &str =
    "SELECT id, room_guid, inviter, ts_ms FROM invitations WHERE user_uri = $1 AND seen = 0
     ORDER BY id";
/// `Store::outbox_peek`.
pub const OUTBOX_PEEK: &str = "SELECT id, kind, room_uri, room_name, user_uri, ts_ms, content
     FROM compliance_outbox ORDER BY id LIMIT $1";
/// `Store::messages_after`.
pub const MESSAGES_AFTER: &str =
    "SELECT id, room_guid, author, ts_ms, text FROM messages WHERE id > $1
     ORDER BY id LIMIT $2";
/// `Store::log_append`: the room's next log sequence number (locks its row).
pub const NEXT_LOG_SEQ: &str =
    "UPDATE rooms SET log_seq = log_seq + 1 WHERE guid = $1 RETURNING log_seq";
/// `Store::log_append`: the entry.
pub const LOG_APPEND: &str =
    "INSERT INTO room_log (room_guid, seq, origin, dialog, kind, user_uri, ts_ms, msg_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// `Store::log_heads`.
pub const LOG_HEADS: &str = "SELECT guid, log_seq FROM rooms ORDER BY guid";
/// `Store::log_after`: entries with their post's text.
pub const LOG_AFTER: &str =
    "SELECT l.seq, l.room_guid, l.origin, l.dialog, l.kind, l.user_uri, l.ts_ms,
     COALESCE(m.text, '') FROM room_log l LEFT JOIN messages m ON m.id = l.msg_id
     WHERE l.room_guid = $1 AND l.seq > $2 ORDER BY l.seq LIMIT $3";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_for_sqlite() {
        assert_eq!(
            sqlite_placeholders("a = $2 AND b = $1 AND c = $10 AND d = '$x'"),
            "a = ?2 AND b = ?1 AND c = ?10 AND d = '$x'"
        );
        assert!(matches!(sqlite_placeholders("SELECT 1"), Cow::Borrowed(_)));
        let q: &'static str = "a = $2 AND b = $1";
        assert_eq!(sqlite_static(q), "a = ?2 AND b = ?1");
        assert!(
            std::ptr::eq(sqlite_static(q), sqlite_static(q)),
            "rewritten once"
        );
        assert_eq!(sqlite_static("SELECT 1"), "SELECT 1");
    }
}
