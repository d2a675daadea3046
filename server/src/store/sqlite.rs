//! [`Store`] on SQLite (rusqlite, bundled): WAL journal, versioned schema migrations
//! (`store::schema` in the SQLite dialect, `PRAGMA user_version`), prepared-statement
//! cache.

use super::{
    schema, sql, Arg, FileRecord, HistoryQuery, NewLogEntry, NewMessage, OpenSession, RoomAttrs,
    RoomColumns, RoomRecord, Store, StoreError, StoredMessage,
};
use crate::compliance::{Event, EventKind, NewEvent};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

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
        let migrations = schema::migrations(schema::Dialect::Sqlite);
        migrate(&mut self.conn, &migrations).map_err(|e| match e {
            Migration::Db(e) => db(e),
            Migration::TooNew { found, supported } => StoreError::SchemaTooNew { found, supported },
        })
    }

    fn roles(&self, guid: &str, role: &str) -> Result<Vec<String>, StoreError> {
        self.column(sql::ROLES, &[guid.into(), role.into()])
    }

    fn presenters(&self, guid: &str) -> Result<Vec<String>, StoreError> {
        self.column(sql::PRESENTERS, &[guid.into()])
    }

    /// The messages of `sql` (rows `(id, room_guid, author, ts_ms, text)`) with `p` bound.
    fn messages(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.rows(sql, p, shared_row)?
            .iter()
            .map(sql::message)
            .collect()
    }

    /// The rows of `sql` with `p` bound, each read by `f`.
    fn rows<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(db)?;
        let rows = st.query_map(p, f).map_err(db)?;
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
pub(crate) fn migrate(
    conn: &mut Connection,
    migrations: &[impl AsRef<str>],
) -> Result<(), Migration> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(Migration::Db)?;
    let supported = migrations.len() as i64;
    if found > supported {
        return Err(Migration::TooNew { found, supported });
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(Migration::Db)?;
        tx.execute_batch(sql.as_ref()).map_err(Migration::Db)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(Migration::Db)?;
        tx.commit().map_err(Migration::Db)?;
    }
    Ok(())
}

/// A row of a shared query as a [`sql::Row`] (text, integer and NULL columns).
fn shared_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<sql::Row> {
    use rusqlite::types::{Type, ValueRef};
    let n = r.as_ref().column_count();
    let value = |i: usize| {
        Ok(match r.get_ref(i)? {
            ValueRef::Null => sql::Value::Null,
            ValueRef::Integer(v) => sql::Value::Int(v),
            ValueRef::Text(t) => sql::Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Real(_) | ValueRef::Blob(_) => {
                let why = "a shared query reads text and integers only".into();
                return Err(rusqlite::Error::FromSqlConversionFailure(
                    i,
                    Type::Blob,
                    why,
                ));
            }
        })
    };
    (0..n)
        .map(value)
        .collect::<rusqlite::Result<_>>()
        .map(sql::Row)
}

impl Store for SqliteStore {
    fn sql_exec(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<u64, StoreError> {
        self.write(|c| {
            let n = c
                .prepare_cached(sql::sqlite_static(sql))?
                .execute(rusqlite::params_from_iter(&args))?;
            Ok(n as u64)
        })
    }

    fn sql_query(
        &mut self,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<Vec<sql::Row>, StoreError> {
        self.rows(
            sql::sqlite_static(sql),
            rusqlite::params_from_iter(&args),
            shared_row,
        )
    }

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
        let [name, description, topic, privacy, category, room_type, invitations] =
            room.attrs.columns();
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
                    name,
                    description,
                    topic,
                    privacy,
                    category,
                    room_type,
                    invitations,
                    room.attrs.disabled
                ],
            )?;
            c.prepare_cached(sql::sqlite_static(sql::DELETE_ROLES))?
                .execute(params![room.guid])?;
            c.prepare_cached(sql::sqlite_static(sql::DELETE_PRESENTERS))?
                .execute(params![room.guid])?;
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
                    let mut text = RoomColumns::default();
                    for (i, t) in text.iter_mut().enumerate() {
                        *t = r.get(i + 1)?;
                    }
                    Ok(RoomRecord {
                        guid: r.get(0)?,
                        attrs: RoomAttrs::from_columns(text, r.get(8)?),
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
                params![room_guid, n],
            )?,
            HistoryQuery::Before(id) => self.messages(
                &format!("{COLS} AND id < ?3 ORDER BY id DESC LIMIT ?2"),
                params![room_guid, n, id],
            )?,
            HistoryQuery::Since(ts) => {
                // Oldest first already: the n messages right after `ts`.
                return self.messages(
                    &format!("{COLS} AND ts_ms >= ?3 ORDER BY id ASC LIMIT ?2"),
                    params![room_guid, n, ts],
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
                    params![room_guid, n, keyword, author, from_ms, to_ms],
                )?
            }
        };
        v.reverse();
        Ok(v)
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

    fn set_followed(&mut self, user: &str, room_guids: &[String]) -> Result<(), StoreError> {
        self.write(|c| {
            let mut keep = std::collections::BTreeSet::new();
            for (i, g) in room_guids.iter().enumerate() {
                if !keep.insert(g.as_str()) {
                    continue;
                }
                // Cached: once per room at every sign-in (bjoin).
                c.prepare_cached(
                    "INSERT INTO followed (user_uri, room_guid, seq) VALUES (?1, ?2, ?3)
                     ON CONFLICT(user_uri, room_guid) DO UPDATE SET seq = excluded.seq",
                )?
                .execute(params![user, g, i as i64 + 1])?;
            }
            let mut st = c.prepare_cached("SELECT room_guid FROM followed WHERE user_uri = ?1")?;
            let have = st
                .query_map(params![user], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            for g in have.iter().filter(|g| !keep.contains(g.as_str())) {
                c.prepare_cached(sql::sqlite_static(sql::UNFOLLOW))?
                    .execute(params![user, g])?;
            }
            Ok(())
        })
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

    fn savepoint(&mut self) -> Result<(), StoreError> {
        self.exec_cached(sql::SAVEPOINT)?;
        self.savepoints += 1;
        Ok(())
    }

    fn release_savepoint(&mut self, keep: bool) -> Result<(), StoreError> {
        if !sql::pop_savepoint(&mut self.savepoints) {
            return Ok(());
        }
        let stmt = sql::release_savepoint(keep);
        if keep {
            // Cached: once per post (a batch statement is parsed on every call).
            self.exec_cached(stmt)
        } else {
            self.conn.execute_batch(stmt).map_err(db)
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

    fn log_append(&mut self, e: &NewLogEntry) -> Result<i64, StoreError> {
        self.write(|c| {
            // Cached: once per post (a `query_row` on the connection parses it each time).
            let seq: i64 = c
                .prepare_cached(sql::sqlite_static(sql::NEXT_LOG_SEQ))?
                .query_row(params![e.head.room_guid], |r| r.get(0))?;
            c.prepare_cached(sql::sqlite_static(sql::LOG_APPEND))?
                .execute(params![
                    e.head.room_guid,
                    seq,
                    e.head.origin,
                    e.head.dialog,
                    e.head.kind.as_str(),
                    e.head.user,
                    e.head.ts_ms,
                    e.msg_id
                ])?;
            Ok(seq)
        })
    }
}

impl SqliteStore {
    /// The first column of each row of the shared query `sql` ([`sql`] text).
    fn column<T: rusqlite::types::FromSql>(
        &self,
        sql: &'static str,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError> {
        self.rows(
            sql::sqlite_static(sql),
            rusqlite::params_from_iter(args),
            |r| r.get(0),
        )
    }
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Text(s) => s.to_sql(),
            Arg::Int(n) => n.to_sql(),
        }
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
    Ok(Event::new(
        r.get(0)?,
        NewEvent {
            kind,
            room_uri: r.get(2)?,
            room_name: r.get(3)?,
            user: r.get(4)?,
            ts_ms: r.get(5)?,
            content: r.get(6)?,
        },
    ))
}
