//! [`Store`] on SQLite (rusqlite, bundled): WAL journal, versioned schema migrations
//! (`PRAGMA user_version`), prepared-statement cache.

use super::{
    FileRecord, HistoryQuery, Invitation, LogEntry, LogKind, NewLogEntry, NewMessage, OpenSession,
    Pref, RoomRecord, Store, StoreError, StoredMessage,
};
use crate::compliance::{Event, EventKind, NewEvent};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// Schema migrations; index + 1 is the `user_version` after applying it. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: rooms, memberships, messages, followed rooms.
    "CREATE TABLE rooms (
        guid TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        description TEXT NOT NULL DEFAULT '',
        topic TEXT NOT NULL DEFAULT '',
        privacy TEXT NOT NULL CHECK (privacy IN ('open','closed','secret'))
     );
     CREATE TABLE room_roles (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        user_uri TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('member','manager')),
        PRIMARY KEY (room_guid, user_uri, role)
     ) WITHOUT ROWID;
     CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room_guid TEXT NOT NULL REFERENCES rooms(guid),
        author TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        text TEXT NOT NULL
     );
     CREATE INDEX messages_by_room ON messages(room_guid, id);
     CREATE TABLE followed (
        user_uri TEXT NOT NULL,
        room_guid TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (user_uri, room_guid)
     ) WITHOUT ROWID;",
    // 2: compliance outbox (issue 4): one row per audited action, written in the
    //    action's transaction; AUTOINCREMENT makes the id a never-reused event id.
    "CREATE TABLE IF NOT EXISTS compliance_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        room_uri TEXT NOT NULL,
        room_name TEXT NOT NULL,
        user_uri TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        content TEXT NOT NULL
     );",
    // 3: room model (category, type, invitations, disabled, presenters), read markers,
    //    preferences, invitations.
    "ALTER TABLE rooms ADD COLUMN category TEXT NOT NULL DEFAULT '';
     ALTER TABLE rooms ADD COLUMN room_type TEXT NOT NULL DEFAULT 'normal'
        CHECK (room_type IN ('normal','auditorium'));
     ALTER TABLE rooms ADD COLUMN invitations TEXT NOT NULL DEFAULT 'inherit'
        CHECK (invitations IN ('inherit','on','off'));
     ALTER TABLE rooms ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE room_presenters (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        user_uri TEXT NOT NULL,
        PRIMARY KEY (room_guid, user_uri)
     ) WITHOUT ROWID;
     ALTER TABLE followed ADD COLUMN last_read_id INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX followed_by_room ON followed(room_guid);
     CREATE TABLE prefs (
        user_uri TEXT NOT NULL,
        label TEXT NOT NULL,
        seqid INTEGER NOT NULL,
        content TEXT NOT NULL,
        PRIMARY KEY (user_uri, label)
     ) WITHOUT ROWID;
     CREATE TABLE invitations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_uri TEXT NOT NULL,
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        inviter TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        seen INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX invitations_by_user ON invitations(user_uri, seen, id);",
    // 4: files posted to rooms over the web service (issue 6): metadata; the bytes are
    // in the content-addressed file store under `sha256`.
    "CREATE TABLE files (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        uploader TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        PRIMARY KEY (room_guid, name)
     );",
    // 5: the open-sessions ledger of the compliance pipeline: (server, user, room) for
    // every JOIN event not yet followed by its PART, so a server that crashed can close
    // its sessions (record their PART) when it starts again.
    "CREATE TABLE open_sessions (
        server TEXT NOT NULL,
        user_uri TEXT NOT NULL,
        room_uri TEXT NOT NULL,
        room_name TEXT NOT NULL,
        PRIMARY KEY (server, user_uri, room_uri)
     ) WITHOUT ROWID;",
    // 6: client message ids (grpchat `msgid`): a post is stored once per author and id,
    // across dialogs and server restarts.
    "ALTER TABLE messages ADD COLUMN client_msgid TEXT;
     CREATE UNIQUE INDEX messages_by_client_msgid ON messages(author, client_msgid)
        WHERE client_msgid IS NOT NULL;",
    // 7: the pool (docs/pool.md): every room's log of posts, joins and parts with a
    // per-room sequence assigned in the writing transaction (`rooms.log_seq`), and the
    // members' leases.
    "ALTER TABLE rooms ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE room_log (
        room_guid TEXT NOT NULL REFERENCES rooms(guid) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        origin TEXT NOT NULL,
        dialog INTEGER NOT NULL,
        kind TEXT NOT NULL,
        user_uri TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        msg_id INTEGER,
        PRIMARY KEY (room_guid, seq)
     ) WITHOUT ROWID;
     CREATE TABLE pool_members (
        server TEXT PRIMARY KEY,
        lease_until_ms INTEGER NOT NULL
     ) WITHOUT ROWID;",
];

/// SQLite-backed store. Not `Sync`: one owner (the channel service task).
pub struct SqliteStore {
    conn: Connection,
    in_tx: bool,
    savepoints: u32,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if missing, with parent directories) the database at `path` and
    /// migrates it to the current schema. `:memory:` opens a private in-memory database.
    /// Errors: [`StoreError::Db`] on I/O or SQL failure, [`StoreError::SchemaTooNew`].
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = if path.as_os_str() == ":memory:" {
            Connection::open_in_memory().map_err(db)?
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Db(format!("{}: {e}", dir.display())))?;
            }
            Connection::open(path).map_err(db)?
        };
        Self::from_connection(conn)
    }

    /// A fresh in-memory store (tests, benchmarks).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::from_connection(Connection::open_in_memory().map_err(db)?)
    }

    fn from_connection(conn: Connection) -> Result<SqliteStore, StoreError> {
        // WAL + synchronous=FULL: a committed transaction survives power loss; one fsync
        // per commit, which group commit amortizes over many posts.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = SqliteStore {
            conn,
            in_tx: false,
            savepoints: 0,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Current schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        migrate(&mut self.conn, MIGRATIONS).map_err(|e| match e {
            Migration::Db(e) => db(e),
            Migration::TooNew { found, supported } => StoreError::SchemaTooNew { found, supported },
        })
    }

    fn roles(&self, guid: &str, role: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT user_uri FROM room_roles WHERE room_guid = ?1 AND role = ?2 ORDER BY user_uri",
            &[&guid, &role],
        )
    }

    fn presenters(&self, guid: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT user_uri FROM room_presenters WHERE room_guid = ?1 ORDER BY user_uri",
            &[&guid],
        )
    }

    fn messages(
        &self,
        sql: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(db)?;
        let rows = st
            .query_map(p, |r| {
                Ok(StoredMessage {
                    id: r.get(0)?,
                    room_guid: r.get(1)?,
                    author: r.get(2)?,
                    ts_ms: r.get(3)?,
                    text: r.get(4)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// Runs `f` inside a transaction unless one is already open (then it joins it).
    /// Runs a statement without parameters from the statement cache: the transaction
    /// and savepoint statements run once per batch or per post, and `execute_batch`
    /// would parse them every time.
    fn exec_cached(&self, sql: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map(drop)
            .map_err(db)
    }

    fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        if self.in_tx || !self.conn.is_autocommit() {
            return f(&self.conn).map_err(db);
        }
        let tx = self.conn.transaction().map_err(db)?;
        let v = f(&tx).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(v)
    }
}

/// Why [`migrate`] failed.
pub(crate) enum Migration {
    /// SQL or I/O error.
    Db(rusqlite::Error),
    /// The database's `user_version` is above the number of migrations known.
    TooNew { found: i64, supported: i64 },
}

/// Applies `migrations[user_version..]`, each in its own transaction that also sets
/// `PRAGMA user_version` to its index + 1.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), Migration> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(Migration::Db)?;
    let supported = migrations.len() as i64;
    if found > supported {
        return Err(Migration::TooNew { found, supported });
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(Migration::Db)?;
        tx.execute_batch(sql).map_err(Migration::Db)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(Migration::Db)?;
        tx.commit().map_err(Migration::Db)?;
    }
    Ok(())
}

/// Reads a message row `(id, room_guid, author, ts_ms, text)`.
fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        id: r.get(0)?,
        room_guid: r.get(1)?,
        author: r.get(2)?,
        ts_ms: r.get(3)?,
        text: r.get(4)?,
    })
}

impl Store for SqliteStore {
    fn begin(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            self.exec_cached("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.in_tx {
            let r = self.exec_cached("COMMIT");
            if r.is_err() {
                self.rollback();
            }
            self.in_tx = false;
            self.savepoints = 0;
            r?;
        }
        Ok(())
    }

    fn rollback(&mut self) {
        if self.in_tx || !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.in_tx = false;
        self.savepoints = 0;
    }

    fn upsert_room(&mut self, room: &RoomRecord) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO rooms (guid, name, description, topic, privacy, category, room_type,
                   invitations, disabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(guid) DO UPDATE SET name = excluded.name, description = excluded.description,
                   topic = excluded.topic, privacy = excluded.privacy, category = excluded.category,
                   room_type = excluded.room_type, invitations = excluded.invitations,
                   disabled = excluded.disabled",
                params![
                    room.guid,
                    room.name,
                    room.description,
                    room.topic,
                    room.privacy,
                    room.category,
                    room.room_type,
                    room.invitations,
                    room.disabled
                ],
            )?;
            c.execute("DELETE FROM room_roles WHERE room_guid = ?1", params![room.guid])?;
            c.execute("DELETE FROM room_presenters WHERE room_guid = ?1", params![room.guid])?;
            let mut pres = c.prepare_cached(
                "INSERT OR IGNORE INTO room_presenters (room_guid, user_uri) VALUES (?1, ?2)",
            )?;
            for p in &room.presenters {
                pres.execute(params![room.guid, p])?;
            }
            let mut ins = c.prepare_cached(
                "INSERT OR IGNORE INTO room_roles (room_guid, user_uri, role) VALUES (?1, ?2, ?3)",
            )?;
            for m in &room.members {
                ins.execute(params![room.guid, m, "member"])?;
            }
            for m in &room.managers {
                ins.execute(params![room.guid, m, "manager"])?;
            }
            Ok(())
        })
    }

    fn load_rooms(&mut self) -> Result<Vec<RoomRecord>, StoreError> {
        let heads: Vec<RoomRecord> = {
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT guid, name, description, topic, privacy, category, room_type, invitations,
                       disabled FROM rooms ORDER BY name COLLATE NOCASE",
                )
                .map_err(db)?;
            let rows = st
                .query_map([], |r| {
                    Ok(RoomRecord {
                        guid: r.get(0)?,
                        name: r.get(1)?,
                        description: r.get(2)?,
                        topic: r.get(3)?,
                        privacy: r.get(4)?,
                        category: r.get(5)?,
                        room_type: r.get(6)?,
                        invitations: r.get(7)?,
                        disabled: r.get(8)?,
                        members: Vec::new(),
                        managers: Vec::new(),
                        presenters: Vec::new(),
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        heads
            .into_iter()
            .map(|mut room| {
                room.members = self.roles(&room.guid, "member")?;
                room.managers = self.roles(&room.guid, "manager")?;
                room.presenters = self.presenters(&room.guid)?;
                Ok(room)
            })
            .collect()
    }

    fn append_message(&mut self, msg: &NewMessage) -> Result<i64, StoreError> {
        self.write(|c| {
            let mut st = c.prepare_cached(
                "INSERT INTO messages (room_guid, author, ts_ms, text, client_msgid)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            st.execute(params![
                msg.room_guid,
                msg.author,
                msg.ts_ms,
                msg.text,
                msg.client_msgid
            ])?;
            Ok(c.last_insert_rowid())
        })
    }

    fn last_messages(&mut self, room_guid: &str, n: u32) -> Result<Vec<StoredMessage>, StoreError> {
        self.history(room_guid, &HistoryQuery::Last, n)
    }

    fn history(
        &mut self,
        room_guid: &str,
        q: &HistoryQuery,
        n: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        const COLS: &str =
            "SELECT id, room_guid, author, ts_ms, text FROM messages WHERE room_guid = ?1";
        let mut v = match q {
            HistoryQuery::Last => self.messages(
                &format!("{COLS} ORDER BY id DESC LIMIT ?2"),
                &[&room_guid, &n],
            )?,
            HistoryQuery::Before(id) => self.messages(
                &format!("{COLS} AND id < ?3 ORDER BY id DESC LIMIT ?2"),
                &[&room_guid, &n, id],
            )?,
            HistoryQuery::Since(ts) => {
                // Oldest first already: the n messages right after `ts`.
                return self.messages(
                    &format!("{COLS} AND ts_ms >= ?3 ORDER BY id ASC LIMIT ?2"),
                    &[&room_guid, &n, ts],
                );
            }
            HistoryQuery::Search {
                keyword,
                author,
                from_ms,
                to_ms,
            } => {
                // instr(lower(..)) instead of LIKE: no wildcard escaping of user input.
                self.messages(
                    &format!(
                        "{COLS} AND instr(lower(text), lower(?3)) > 0
                         AND (?4 IS NULL OR lower(author) = lower(?4))
                         AND (?5 IS NULL OR ts_ms >= ?5) AND (?6 IS NULL OR ts_ms <= ?6)
                         ORDER BY id DESC LIMIT ?2"
                    ),
                    &[&room_guid, &n, keyword, author, from_ms, to_ms],
                )?
            }
        };
        v.reverse();
        Ok(v)
    }

    fn message_count(&mut self, room_guid: &str) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM messages WHERE room_guid = ?1")
            .and_then(|mut st| st.query_row(params![room_guid], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(db)
    }

    fn follow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.write(|c| {
            let next: i64 = c
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM followed WHERE user_uri = ?1",
                    params![user],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(1);
            c.execute(
                "INSERT OR IGNORE INTO followed (user_uri, room_guid, seq) VALUES (?1, ?2, ?3)",
                params![user, room_guid, next],
            )?;
            Ok(())
        })
    }

    fn unfollow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "DELETE FROM followed WHERE user_uri = ?1 AND room_guid = ?2",
                params![user, room_guid],
            )?;
            Ok(())
        })
    }

    fn followed(&mut self, user: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT room_guid FROM followed WHERE user_uri = ?1 ORDER BY seq",
            &[&user],
        )
    }

    fn set_followed(&mut self, user: &str, room_guids: &[String]) -> Result<(), StoreError> {
        self.write(|c| {
            let mut keep = std::collections::BTreeSet::new();
            for (i, g) in room_guids.iter().enumerate() {
                if !keep.insert(g.as_str()) {
                    continue;
                }
                c.execute(
                    "INSERT INTO followed (user_uri, room_guid, seq) VALUES (?1, ?2, ?3)
                     ON CONFLICT(user_uri, room_guid) DO UPDATE SET seq = excluded.seq",
                    params![user, g, i as i64 + 1],
                )?;
            }
            let mut st = c.prepare_cached("SELECT room_guid FROM followed WHERE user_uri = ?1")?;
            let have = st
                .query_map(params![user], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            for g in have.iter().filter(|g| !keep.contains(g.as_str())) {
                c.execute(
                    "DELETE FROM followed WHERE user_uri = ?1 AND room_guid = ?2",
                    params![user, g],
                )?;
            }
            Ok(())
        })
    }

    fn followers(&mut self, room_guid: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT user_uri FROM followed WHERE room_guid = ?1 ORDER BY user_uri",
            &[&room_guid],
        )
    }

    fn mark_read(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "UPDATE followed SET last_read_id =
                   (SELECT COALESCE(MAX(id), 0) FROM messages WHERE room_guid = ?2)
                 WHERE user_uri = ?1 AND room_guid = ?2",
                params![user, room_guid],
            )?;
            Ok(())
        })
    }

    fn unread_count(&mut self, user: &str, room_guid: &str) -> Result<u64, StoreError> {
        self.count(
            "SELECT COUNT(*) FROM messages m JOIN followed f
               ON f.room_guid = m.room_guid AND f.user_uri = ?1
             WHERE m.room_guid = ?2 AND m.id > f.last_read_id",
            &[&user, &room_guid],
        )
    }

    fn put_file(&mut self, f: &FileRecord) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO files (room_guid, name, sha256, size, uploader, ts_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(room_guid, name) DO UPDATE SET sha256 = excluded.sha256,
                   size = excluded.size, uploader = excluded.uploader, ts_ms = excluded.ts_ms",
                params![
                    f.room_guid,
                    f.name,
                    f.sha256,
                    f.size as i64,
                    f.uploader,
                    f.ts_ms
                ],
            )?;
            Ok(())
        })
    }

    fn get_file(&mut self, room_guid: &str, name: &str) -> Result<Option<FileRecord>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT room_guid, name, sha256, size, uploader, ts_ms FROM files
                 WHERE room_guid = ?1 AND name = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![room_guid, name], |r| {
                    Ok(FileRecord {
                        room_guid: r.get(0)?,
                        name: r.get(1)?,
                        sha256: r.get(2)?,
                        size: r.get::<_, i64>(3)?.max(0) as u64,
                        uploader: r.get(4)?,
                        ts_ms: r.get(5)?,
                    })
                })
                .optional()
            })
            .map_err(db)
    }

    fn find_client_message(
        &mut self,
        author: &str,
        client_msgid: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached("SELECT id FROM messages WHERE author = ?1 AND client_msgid = ?2")
            .and_then(|mut st| {
                st.query_row(params![author, client_msgid], |r| r.get(0))
                    .optional()
            })
            .map_err(db)
    }

    fn open_session(&mut self, server: &str, s: &OpenSession) -> Result<(), StoreError> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO open_sessions (server, user_uri, room_uri, room_name)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![server, s.user, s.room_uri, s.room_name])
            .map(|_| ())
        })
    }

    fn close_session(
        &mut self,
        server: &str,
        user: &str,
        room_uri: &str,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            c.prepare_cached(
                "DELETE FROM open_sessions WHERE server = ?1 AND user_uri = ?2 AND room_uri = ?3",
            )?
            .execute(params![server, user, room_uri])
            .map(|_| ())
        })
    }

    fn open_sessions(&mut self, server: &str) -> Result<Vec<OpenSession>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT user_uri, room_uri, room_name FROM open_sessions
                 WHERE server = ?1 ORDER BY user_uri, room_uri",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![server], |r| {
                Ok(OpenSession {
                    user: r.get(0)?,
                    room_uri: r.get(1)?,
                    room_name: r.get(2)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn get_pref(&mut self, user: &str, label: &str) -> Result<Option<Pref>, StoreError> {
        self.conn
            .prepare_cached("SELECT seqid, content FROM prefs WHERE user_uri = ?1 AND label = ?2")
            .and_then(|mut st| {
                st.query_row(params![user, label], |r| {
                    Ok(Pref {
                        seqid: r.get::<_, i64>(0)?.max(0) as u64,
                        content: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(db)
    }

    fn set_pref(&mut self, user: &str, label: &str, content: &str) -> Result<u64, StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO prefs (user_uri, label, seqid, content) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT(user_uri, label) DO UPDATE SET seqid = seqid + 1, content = excluded.content",
                params![user, label, content],
            )?;
            c.query_row(
                "SELECT seqid FROM prefs WHERE user_uri = ?1 AND label = ?2",
                params![user, label],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
        })
    }

    fn add_invitation(
        &mut self,
        user: &str,
        room_guid: &str,
        inviter: &str,
        ts_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO invitations (user_uri, room_guid, inviter, ts_ms)
                 SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM invitations
                   WHERE user_uri = ?1 AND room_guid = ?2 AND seen = 0)",
                params![user, room_guid, inviter, ts_ms],
            )?;
            Ok(())
        })
    }

    fn invitations(&mut self, user: &str) -> Result<Vec<Invitation>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, room_guid, inviter, ts_ms FROM invitations WHERE user_uri = ?1 AND seen = 0
                 ORDER BY id",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![user], |r| {
                Ok(Invitation {
                    id: r.get(0)?,
                    room_guid: r.get(1)?,
                    inviter: r.get(2)?,
                    ts_ms: r.get(3)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn mark_invitation_seen(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "UPDATE invitations SET seen = 1 WHERE user_uri = ?1 AND room_guid = ?2 AND seen = 0",
                params![user, room_guid],
            )?;
            Ok(())
        })
    }

    fn savepoint(&mut self) -> Result<(), StoreError> {
        self.exec_cached("SAVEPOINT action")?;
        self.savepoints += 1;
        Ok(())
    }

    fn release_savepoint(&mut self, keep: bool) -> Result<(), StoreError> {
        if self.savepoints == 0 {
            return Ok(());
        }
        self.savepoints -= 1;
        if keep {
            self.exec_cached("RELEASE action")
        } else {
            self.conn
                .execute_batch("ROLLBACK TO action; RELEASE action")
                .map_err(db)
        }
    }

    fn record_event(&mut self, ev: &NewEvent) -> Result<i64, StoreError> {
        self.write(|c| {
            let mut st = c.prepare_cached(
                "INSERT INTO compliance_outbox (kind, room_uri, room_name, user_uri, ts_ms, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            st.execute(params![
                ev.kind.as_str(),
                ev.room_uri,
                ev.room_name,
                ev.user,
                ev.ts_ms,
                ev.content
            ])?;
            Ok(c.last_insert_rowid())
        })
    }

    fn outbox_peek(&mut self, limit: u32) -> Result<Vec<Event>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, kind, room_uri, room_name, user_uri, ts_ms, content
                 FROM compliance_outbox ORDER BY id LIMIT ?1",
            )
            .map_err(db)?;
        let rows = st.query_map(params![limit], event_row).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn outbox_delete(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        self.write(|c| {
            let mut st = c.prepare_cached("DELETE FROM compliance_outbox WHERE id = ?1")?;
            for id in ids {
                st.execute(params![id])?;
            }
            Ok(())
        })
    }

    fn event_high_water(&mut self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'compliance_outbox'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(db)
    }

    fn messages_after(
        &mut self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, room_guid, author, ts_ms, text FROM messages WHERE id > ?1
                 ORDER BY id LIMIT ?2",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![after_id, limit], message_row)
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn log_append(&mut self, e: &NewLogEntry) -> Result<i64, StoreError> {
        self.write(|c| {
            // Cached: once per post (a `query_row` on the connection parses it each time).
            let seq: i64 = c
                .prepare_cached(
                    "UPDATE rooms SET log_seq = log_seq + 1 WHERE guid = ?1 RETURNING log_seq",
                )?
                .query_row(params![e.room_guid], |r| r.get(0))?;
            c.prepare_cached(
                "INSERT INTO room_log (room_guid, seq, origin, dialog, kind, user_uri, ts_ms, msg_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                e.room_guid,
                seq,
                e.origin,
                e.dialog,
                e.kind.as_str(),
                e.user,
                e.ts_ms,
                e.msg_id
            ])?;
            Ok(seq)
        })
    }

    fn room_sessions(&mut self, room_uri: &str) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT DISTINCT user_uri FROM open_sessions WHERE room_uri = ?1 ORDER BY user_uri",
            &[&room_uri],
        )
    }

    fn log_heads(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT guid, log_seq FROM rooms ORDER BY guid")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn log_after(
        &mut self,
        room_guid: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT l.seq, l.room_guid, l.origin, l.dialog, l.kind, l.user_uri, l.ts_ms,
                   COALESCE(m.text, '') FROM room_log l LEFT JOIN messages m ON m.id = l.msg_id
                 WHERE l.room_guid = ?1 AND l.seq > ?2 ORDER BY l.seq LIMIT ?3",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![room_guid, after_seq, limit], |r| {
                let kind: String = r.get(4)?;
                Ok((kind, log_entry(r)?))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, mut e) = row.map_err(db)?;
            e.kind = LogKind::parse(&kind)
                .ok_or_else(|| StoreError::Db(format!("unknown log kind {kind:?}")))?;
            out.push(e);
        }
        Ok(out)
    }

    fn lease_renew(&mut self, server: &str, until_ms: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO pool_members (server, lease_until_ms) VALUES (?1, ?2)
                 ON CONFLICT(server) DO UPDATE SET lease_until_ms = excluded.lease_until_ms",
                params![server, until_ms],
            )?;
            Ok(())
        })
    }

    fn lease_expired(&mut self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.strings(
            "SELECT server FROM pool_members WHERE lease_until_ms < ?1 ORDER BY server",
            &[&now_ms],
        )
    }

    fn lease_claim(&mut self, server: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write(|c| {
            c.execute(
                "DELETE FROM pool_members WHERE server = ?1 AND lease_until_ms < ?2",
                params![server, now_ms],
            )
            .map(|n| n > 0)
        })
    }
}

/// A log row `(seq, room_guid, origin, dialog, kind, user_uri, ts_ms, text)`, its kind
/// left for the caller to parse.
fn log_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        seq: r.get(0)?,
        room_guid: r.get(1)?,
        origin: r.get(2)?,
        dialog: r.get(3)?,
        kind: LogKind::Chat,
        user: r.get(5)?,
        ts_ms: r.get(6)?,
        text: r.get(7)?,
    })
}

impl SqliteStore {
    fn count(&self, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.query_row(p, |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(db)
    }
}

/// Room-model additions of schema version 2 (kept apart from the skeleton's methods).
impl SqliteStore {
    fn strings(&self, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(db)?;
        let rows = st.query_map(p, |r| r.get::<_, String>(0)).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }
}

/// Reads an event row `(id, kind, room_uri, room_name, user_uri, ts_ms, content)`; an
/// unknown kind is a conversion error (the row was not written by this code).
pub(crate) fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = r.get(1)?;
    let kind = EventKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown event kind {kind:?}").into(),
        )
    })?;
    Ok(Event {
        id: r.get(0)?,
        kind,
        room_uri: r.get(2)?,
        room_name: r.get(3)?,
        user: r.get(4)?,
        ts_ms: r.get(5)?,
        content: r.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(guid: &str, name: &str) -> RoomRecord {
        RoomRecord {
            guid: guid.into(),
            name: name.into(),
            description: "d".into(),
            topic: "t".into(),
            privacy: "open".into(),
            members: vec!["sip:a@x".into(), "sip:b@x".into()],
            managers: vec!["sip:a@x".into()],
            presenters: vec!["sip:p@x".into()],
            category: "Default".into(),
            room_type: "auditorium".into(),
            invitations: "on".into(),
            disabled: false,
        }
    }

    fn msg(room: &str, text: &str) -> NewMessage {
        NewMessage {
            client_msgid: None,
            room_guid: room.into(),
            author: "sip:a@x".into(),
            ts_ms: 1,
            text: text.into(),
        }
    }

    #[test]
    fn rooms_upsert_and_reload() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.upsert_room(&room("g1", "Zeta")).unwrap();
        s.upsert_room(&room("g2", "alpha")).unwrap();
        let mut r = room("g1", "Zeta");
        r.topic = "new".into();
        r.members = vec!["sip:c@x".into()];
        s.upsert_room(&r).unwrap();
        let rooms = s.load_rooms().unwrap();
        assert_eq!(rooms.len(), 2);
        assert_eq!(rooms[0].name, "alpha");
        assert_eq!(rooms[1], r);
        assert!(
            s.upsert_room(&room("g3", "ZETA")).is_err(),
            "names unique case-insensitively"
        );
    }

    #[test]
    fn history_last_n_oldest_first_and_rollback_keeps_nothing() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.upsert_room(&room("g1", "A")).unwrap();
        for i in 0..5 {
            s.append_message(&msg("g1", &format!("m{i}"))).unwrap();
        }
        let last: Vec<_> = s
            .last_messages("g1", 3)
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(last, ["m2", "m3", "m4"]);
        s.begin().unwrap();
        s.append_message(&msg("g1", "lost")).unwrap();
        s.rollback();
        assert_eq!(s.message_count("g1").unwrap(), 5);
        s.begin().unwrap();
        s.append_message(&msg("g1", "kept")).unwrap();
        s.commit().unwrap();
        assert_eq!(s.message_count("g1").unwrap(), 6);
        assert!(
            s.append_message(&msg("nope", "x")).is_err(),
            "foreign key on room"
        );
    }

    #[test]
    fn followed_in_order_idempotent() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.follow("u", "g2").unwrap();
        s.follow("u", "g1").unwrap();
        s.follow("u", "g2").unwrap();
        assert_eq!(s.followed("u").unwrap(), ["g2", "g1"]);
        s.unfollow("u", "g2").unwrap();
        assert_eq!(s.followed("u").unwrap(), ["g1"]);
        assert!(s.followed("other").unwrap().is_empty());
    }

    #[test]
    fn history_queries_before_since_search() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.upsert_room(&room("g1", "A")).unwrap();
        for (i, (author, text)) in [
            ("sip:a@x", "Alpha one"),
            ("sip:b@x", "beta"),
            ("sip:a@x", "ALPHA two"),
            ("sip:b@x", "alpha 100%"),
        ]
        .iter()
        .enumerate()
        {
            let mut m = msg("g1", text);
            m.author = author.to_string();
            m.ts_ms = 1000 * (i as i64 + 1);
            s.append_message(&m).unwrap();
        }
        let texts = |v: Vec<StoredMessage>| v.into_iter().map(|m| m.text).collect::<Vec<_>>();
        let ids: Vec<i64> = s
            .last_messages("g1", 10)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(
            texts(s.history("g1", &HistoryQuery::Before(ids[2]), 10).unwrap()),
            ["Alpha one", "beta"]
        );
        assert_eq!(
            texts(s.history("g1", &HistoryQuery::Before(ids[2]), 1).unwrap()),
            ["beta"]
        );
        assert_eq!(
            texts(s.history("g1", &HistoryQuery::Since(2000), 2).unwrap()),
            ["beta", "ALPHA two"]
        );
        let search = |keyword: &str, author: Option<&str>, from_ms, to_ms| HistoryQuery::Search {
            keyword: keyword.into(),
            author: author.map(str::to_string),
            from_ms,
            to_ms,
        };
        assert_eq!(
            texts(
                s.history("g1", &search("alpha", None, None, None), 10)
                    .unwrap()
            ),
            ["Alpha one", "ALPHA two", "alpha 100%"]
        );
        assert_eq!(
            texts(
                s.history("g1", &search("alpha", Some("SIP:A@x"), None, None), 10)
                    .unwrap()
            ),
            ["Alpha one", "ALPHA two"]
        );
        assert_eq!(
            texts(
                s.history("g1", &search("", None, Some(2000), Some(3000)), 10)
                    .unwrap()
            ),
            ["beta", "ALPHA two"]
        );
        assert_eq!(
            texts(s.history("g1", &search("%", None, None, None), 10).unwrap()),
            ["alpha 100%"],
            "no LIKE wildcards"
        );
    }

    #[test]
    fn read_markers_prefs_invitations() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.upsert_room(&room("g1", "A")).unwrap();
        s.upsert_room(&room("g2", "B")).unwrap();
        s.follow("u", "g1").unwrap();
        s.append_message(&msg("g1", "x")).unwrap();
        assert_eq!(s.unread_count("u", "g1").unwrap(), 1);
        s.mark_read("u", "g1").unwrap();
        s.append_message(&msg("g1", "y")).unwrap();
        s.append_message(&msg("g1", "z")).unwrap();
        assert_eq!(s.unread_count("u", "g1").unwrap(), 2);
        assert_eq!(s.unread_count("other", "g1").unwrap(), 0, "not followed");
        assert_eq!(s.followers("g1").unwrap(), ["u"]);
        s.set_followed("u", &["g2".into(), "g1".into()]).unwrap();
        assert_eq!(s.followed("u").unwrap(), ["g2", "g1"]);
        assert_eq!(s.unread_count("u", "g1").unwrap(), 2, "marker kept");
        s.set_followed("u", &["g2".into()]).unwrap();
        assert_eq!(s.followed("u").unwrap(), ["g2"]);

        assert_eq!(s.get_pref("u", "l").unwrap(), None);
        assert_eq!(s.set_pref("u", "l", "AA==").unwrap(), 1);
        assert_eq!(s.set_pref("u", "l", "AQ==").unwrap(), 2);
        assert_eq!(
            s.get_pref("u", "l").unwrap(),
            Some(Pref {
                seqid: 2,
                content: "AQ==".into()
            })
        );

        s.add_invitation("u", "g1", "sip:a@x", 5).unwrap();
        s.add_invitation("u", "g1", "sip:a@x", 6).unwrap();
        s.add_invitation("u", "g2", "sip:a@x", 7).unwrap();
        let inv = s.invitations("u").unwrap();
        assert_eq!(
            inv.iter().map(|i| i.room_guid.as_str()).collect::<Vec<_>>(),
            ["g1", "g2"]
        );
        s.mark_invitation_seen("u", "g1").unwrap();
        assert_eq!(s.invitations("u").unwrap().len(), 1);
    }

    #[test]
    fn file_store_survives_reopen_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/pchat.db");
        {
            let mut s = SqliteStore::open(&path).unwrap();
            s.upsert_room(&room("g1", "A")).unwrap();
            s.append_message(&msg("g1", "persisted")).unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(s.last_messages("g1", 10).unwrap()[0].text, "persisted");
    }
}
