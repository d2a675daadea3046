//! The store's schema, written once for both backends: [`MIGRATIONS`] are the tables of
//! the Persistent Chat Store with the few places where SQLite and PostgreSQL spell a
//! column differently left as `{placeholders}`, and a [`Dialect`] fills them in
//! ([`SQLITE`], [`POSTGRES`]; [`migrations`]). A table or column added here reaches both
//! stores, so they cannot drift apart; what differs is listed, side by side, in the two
//! dialects.
//!
//! Versions: index + 1 is the schema version after applying it - SQLite's
//! `PRAGMA user_version`, PostgreSQL's `pchat_schema.version`. Append only: a database
//! at version N gets `MIGRATIONS[N..]`.

/// How one backend spells the columns the two SQL dialects write differently. Each
/// field replaces the placeholder of its name in [`MIGRATIONS`].
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// `{int}`: a 64-bit integer column.
    pub int: &'static str,
    /// `{serial}`: an integer primary key that the database assigns, never reused.
    pub serial: &'static str,
    /// `{no_rowid}`: after the closing parenthesis of a table whose primary key is its
    /// only lookup (SQLite: `WITHOUT ROWID`).
    pub no_rowid: &'static str,
    /// `{flag}`: a boolean column, false by default (read as 0/1 by `sql::Row`).
    pub flag: &'static str,
    /// `{nocase_unique}`: after `name TEXT NOT NULL` of `rooms`: names unique ignoring
    /// ASCII case, in the column (SQLite)...
    pub nocase_unique: &'static str,
    /// `{nocase_unique_index}`: ... or as an index on `lower(name)` (PostgreSQL).
    pub nocase_unique_index: &'static str,
    /// `{event_id}`: the compliance outbox's event id: assigned by the database, or (in
    /// a pool) taken from the `event` counter row so ids stay gap-free across rollbacks.
    pub event_id: &'static str,
    /// `{event_counter}`: the counter row `{event_id}` reads, when it needs one.
    pub event_counter: &'static str,
    /// `{log_notify}`: the pool's wake-up on each `room_log` insert (PostgreSQL's
    /// `NOTIFY` on commit; the simulated pool rings `store::bell` instead).
    pub log_notify: &'static str,
}

/// SQLite (`store::sqlite`).
pub const SQLITE: Dialect = Dialect {
    int: "INTEGER",
    serial: "INTEGER PRIMARY KEY AUTOINCREMENT",
    no_rowid: " WITHOUT ROWID",
    flag: "INTEGER NOT NULL DEFAULT 0",
    nocase_unique: " UNIQUE COLLATE NOCASE",
    nocase_unique_index: "",
    event_id: "INTEGER PRIMARY KEY AUTOINCREMENT",
    event_counter: "",
    log_notify: "",
};

/// PostgreSQL (`store::postgres`; the database is created without locale, so `lower`
/// folds ASCII only, like SQLite's `NOCASE`).
pub const POSTGRES: Dialect = Dialect {
    int: "BIGINT",
    serial: "BIGSERIAL PRIMARY KEY",
    no_rowid: "",
    flag: "BOOLEAN NOT NULL DEFAULT FALSE",
    nocase_unique: "",
    nocase_unique_index: "CREATE UNIQUE INDEX rooms_by_name ON rooms (lower(name));",
    event_id: "BIGINT PRIMARY KEY",
    event_counter: "CREATE TABLE pchat_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
     INSERT INTO pchat_counters VALUES ('event', 0);",
    log_notify: "CREATE FUNCTION pchat_pool_notify() RETURNS trigger AS $$
     BEGIN PERFORM pg_notify('pchat_pool', NEW.room_guid); RETURN NULL; END;
     $$ LANGUAGE plpgsql;
     CREATE TRIGGER room_log_notify AFTER INSERT ON room_log
        FOR EACH ROW EXECUTE FUNCTION pchat_pool_notify();",
};

/// The schema migrations with their dialect placeholders (see [`Dialect`]); index + 1
/// is the version after applying it. Append only.
pub const MIGRATIONS: &[&str] = &[
    // 1: rooms, memberships, messages, followed rooms.
    "CREATE TABLE rooms (
        guid TEXT PRIMARY KEY,
        name TEXT NOT NULL{nocase_unique},
        description TEXT NOT NULL DEFAULT '',
        topic TEXT NOT NULL DEFAULT '',
        privacy TEXT NOT NULL CHECK (privacy IN ('open','closed','secret'))
     );
     {nocase_unique_index}
     CREATE TABLE room_roles (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        user_uri TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('member','manager')),
        PRIMARY KEY (room_guid, user_uri, role)
     ){no_rowid};
     CREATE TABLE messages (
        id {serial},
        room_guid TEXT NOT NULL REFERENCES rooms(guid),
        author TEXT NOT NULL,
        ts_ms {int} NOT NULL,
        text TEXT NOT NULL
     );
     CREATE INDEX messages_by_room ON messages(room_guid, id);
     CREATE TABLE followed (
        user_uri TEXT NOT NULL,
        room_guid TEXT NOT NULL,
        seq {int} NOT NULL,
        PRIMARY KEY (user_uri, room_guid)
     ){no_rowid};",
    // 2: compliance outbox (issue 4): one row per audited action, written in the
    //    action's transaction; the id is a never-reused event id.
    "CREATE TABLE IF NOT EXISTS compliance_outbox (
        id {event_id},
        kind TEXT NOT NULL,
        room_uri TEXT NOT NULL,
        room_name TEXT NOT NULL,
        user_uri TEXT NOT NULL,
        ts_ms {int} NOT NULL,
        content TEXT NOT NULL
     );
     {event_counter}",
    // 3: room model (category, type, invitations, disabled, presenters), read markers,
    //    preferences, invitations.
    "ALTER TABLE rooms ADD COLUMN category TEXT NOT NULL DEFAULT '';
     ALTER TABLE rooms ADD COLUMN room_type TEXT NOT NULL DEFAULT 'normal'
        CHECK (room_type IN ('normal','auditorium'));
     ALTER TABLE rooms ADD COLUMN invitations TEXT NOT NULL DEFAULT 'inherit'
        CHECK (invitations IN ('inherit','on','off'));
     ALTER TABLE rooms ADD COLUMN disabled {flag};
     CREATE TABLE room_presenters (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        user_uri TEXT NOT NULL,
        PRIMARY KEY (room_guid, user_uri)
     ){no_rowid};
     ALTER TABLE followed ADD COLUMN last_read_id {int} NOT NULL DEFAULT 0;
     CREATE INDEX followed_by_room ON followed(room_guid);
     CREATE TABLE prefs (
        user_uri TEXT NOT NULL,
        label TEXT NOT NULL,
        seqid {int} NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (user_uri, label)
     ){no_rowid};
     CREATE TABLE invitations (
        id {serial},
        user_uri TEXT NOT NULL,
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        inviter TEXT NOT NULL,
        ts_ms {int} NOT NULL,
        seen INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX invitations_by_user ON invitations(user_uri, seen, id);",
    // 4: files posted to rooms over the web service (issue 6): metadata; the bytes are
    // in the content-addressed file store under `sha256`.
    "CREATE TABLE files (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size {int} NOT NULL,
        uploader TEXT NOT NULL,
        ts_ms {int} NOT NULL,
        PRIMARY KEY (room_guid, name)
     );",
    // 5: the open-sessions ledger of the compliance pipeline: (server, user, room) for
    // every JOIN event not yet followed by its PART, so a server that crashed can close
    // its sessions (record their PART) when it starts again (pool-wide: keyed by member).
    "CREATE TABLE open_sessions (
        server TEXT NOT NULL,
        user_uri TEXT NOT NULL,
        room_uri TEXT NOT NULL,
        room_name TEXT NOT NULL,
        PRIMARY KEY (server, user_uri, room_uri)
     ){no_rowid};",
    // 6: client message ids (grpchat `msgid`): a post is stored once per author and id,
    // across dialogs and server restarts.
    "ALTER TABLE messages ADD COLUMN client_msgid TEXT;
     CREATE UNIQUE INDEX messages_by_client_msgid ON messages(author, client_msgid)
        WHERE client_msgid IS NOT NULL;",
    // 7: the pool (docs/pool.md): every room's log of posts, joins and parts with a
    // per-room sequence assigned in the writing transaction (`rooms.log_seq`), and the
    // members' leases.
    "ALTER TABLE rooms ADD COLUMN log_seq {int} NOT NULL DEFAULT 0;
     CREATE TABLE room_log (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        seq {int} NOT NULL,
        origin TEXT NOT NULL,
        dialog {int} NOT NULL,
        kind TEXT NOT NULL,
        user_uri TEXT NOT NULL,
        ts_ms {int} NOT NULL,
        msg_id {int},
        PRIMARY KEY (room_guid, seq)
     ){no_rowid};
     CREATE TABLE pool_members (
        server TEXT PRIMARY KEY,
        lease_until_ms {int} NOT NULL
     ){no_rowid};
     {log_notify}",
    // 8: the pool's role leases (docs/pool.md): one compliance worker exports at a time.
    "CREATE TABLE pool_roles (
        role TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until_ms {int} NOT NULL
     ){no_rowid};",
];

/// [`MIGRATIONS`] in dialect `d`: every `{name}` replaced by `d`'s field of that name.
pub fn migrations(d: &Dialect) -> Vec<String> {
    let fills = [
        ("{int}", d.int),
        ("{serial}", d.serial),
        ("{no_rowid}", d.no_rowid),
        ("{flag}", d.flag),
        ("{nocase_unique}", d.nocase_unique),
        ("{nocase_unique_index}", d.nocase_unique_index),
        ("{event_id}", d.event_id),
        ("{event_counter}", d.event_counter),
        ("{log_notify}", d.log_notify),
    ];
    MIGRATIONS
        .iter()
        .map(|m| {
            fills
                .iter()
                .fold((*m).to_owned(), |s, (name, fill)| s.replace(name, fill))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_in_both_dialects() {
        for d in [SQLITE, POSTGRES] {
            for (i, m) in migrations(&d).iter().enumerate() {
                assert!(!m.contains(['{', '}']), "migration {}: {m}", i + 1);
            }
        }
    }

    #[test]
    fn each_dialect_fills_in_its_own_spellings() {
        let (lite, pg) = (migrations(&SQLITE), migrations(&POSTGRES));
        assert_eq!(lite.len(), pg.len());
        assert!(lite[0].contains("name TEXT NOT NULL UNIQUE COLLATE NOCASE,"));
        assert!(pg[0].contains("CREATE UNIQUE INDEX rooms_by_name ON rooms (lower(name));"));
        assert!(pg[1].contains("INSERT INTO pchat_counters VALUES ('event', 0);"));
        assert!(pg[6].contains("CREATE TRIGGER room_log_notify AFTER INSERT ON room_log"));
        assert_eq!(lite[5], pg[5], "client message ids: the same in both");
    }
}
