//! The store's schema, written once for both backends: [`MIGRATIONS`] are the tables of
//! the Persistent Chat Store with the few places where SQLite and PostgreSQL spell a
//! column differently left as `{placeholders}`, which [`migrations`] fills in for a
//! [`Dialect`] from one table of the two spellings side by side ([`SPELLINGS`]). A
//! table or column added here reaches both stores, so they cannot drift apart.
//!
//! Versions: index + 1 is the schema version after applying it - SQLite's
//! `PRAGMA user_version`, PostgreSQL's `pchat_schema.version`. Append only: a database
//! at version N gets `MIGRATIONS[N..]`.

/// The two SQL dialects the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (`store::sqlite`).
    Sqlite,
    /// PostgreSQL (`store::postgres`).
    Postgres,
}

/// Where the two dialects spell the schema differently, side by side: a placeholder of
/// [`MIGRATIONS`], then SQLite's and PostgreSQL's text for it.
pub const SPELLINGS: &[(&str, &str, &str)] = &[
    // A 64-bit integer column.
    ("{int}", "INTEGER", "BIGINT"),
    // An integer primary key that the database assigns, never reused.
    (
        "{serial}",
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGSERIAL PRIMARY KEY",
    ),
    // After the closing parenthesis of a table whose primary key is its only lookup.
    ("{no_rowid}", " WITHOUT ROWID", ""),
    // A boolean column, false by default (read as 0/1 by `sql::Row`).
    (
        "{flag}",
        "INTEGER NOT NULL DEFAULT 0",
        "BOOLEAN NOT NULL DEFAULT FALSE",
    ),
    // Room names unique ignoring ASCII case: in the column (after `name TEXT NOT NULL`),
    // or as an index on `lower(name)` (the PostgreSQL database is created without
    // locale, so `lower` folds ASCII only, like SQLite's `NOCASE`).
    ("{nocase_unique}", " UNIQUE COLLATE NOCASE", ""),
    (
        "{nocase_unique_index}",
        "",
        "CREATE UNIQUE INDEX rooms_by_name ON rooms (lower(name));",
    ),
    // The compliance outbox's event id: assigned by the database, or (in a pool) taken
    // from the `event` counter row, so ids stay gap-free across rollbacks.
    (
        "{event_id}",
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT PRIMARY KEY",
    ),
    (
        "{event_counter}",
        "",
        "CREATE TABLE pchat_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
     INSERT INTO pchat_counters VALUES ('event', 0);",
    ),
    // The pool's wake-up on each `room_log` insert: PostgreSQL's `NOTIFY` on commit
    // (the simulated pool on SQLite rings `store::bell` instead).
    (
        "{log_notify}",
        "",
        "CREATE FUNCTION pchat_pool_notify() RETURNS trigger AS $$
     BEGIN PERFORM pg_notify('pchat_pool', NEW.room_guid); RETURN NULL; END;
     $$ LANGUAGE plpgsql;
     CREATE TRIGGER room_log_notify AFTER INSERT ON room_log
        FOR EACH ROW EXECUTE FUNCTION pchat_pool_notify();",
    ),
];

/// The schema migrations with their dialect placeholders ([`SPELLINGS`]); index + 1
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

/// [`MIGRATIONS`] in dialect `d`: every placeholder replaced by `d`'s spelling of it.
pub fn migrations(d: Dialect) -> Vec<String> {
    MIGRATIONS
        .iter()
        .map(|m| {
            SPELLINGS
                .iter()
                .fold((*m).to_owned(), |s, (name, lite, pg)| {
                    s.replace(name, if d == Dialect::Sqlite { lite } else { pg })
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled_in_both_dialects() {
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            for (i, m) in migrations(d).iter().enumerate() {
                assert!(!m.contains(['{', '}']), "migration {}: {m}", i + 1);
            }
        }
    }

    #[test]
    fn each_dialect_fills_in_its_own_spellings() {
        let (lite, pg) = (migrations(Dialect::Sqlite), migrations(Dialect::Postgres));
        assert_eq!(lite.len(), pg.len());
        assert!(lite[0].contains("name TEXT NOT NULL UNIQUE COLLATE NOCASE,"));
        assert!(pg[0].contains("CREATE UNIQUE INDEX rooms_by_name ON rooms (lower(name));"));
        assert!(pg[1].contains("INSERT INTO pchat_counters VALUES ('event', 0);"));
        assert!(pg[6].contains("CREATE TRIGGER room_log_notify AFTER INSERT ON room_log"));
        assert_eq!(lite[5], pg[5], "client message ids: the same in both");
    }
}
