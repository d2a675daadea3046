//! [`Store`] on PostgreSQL (`[store] url = "postgresql://USER@HOST:PORT/DB"`): the
//! store a pool of servers shares (docs/pool.md).
//!
//! **Shape.** The [`Store`] trait is synchronous and the core calls it inline on its
//! task, as it calls SQLite. A `PgStore` therefore owns one connection (the `postgres`
//! crate's blocking client, which runs its own small runtime) on a thread of its own;
//! each call is sent there as a closure and waited for. The core task blocks for the
//! round trip exactly as it blocks for a SQLite write, group commit is unchanged (one
//! `BEGIN` .. `COMMIT` per batch), and "200 OK only after `COMMIT` returned" holds.
//!
//! **Same behaviour as SQLite.** A statement that fails inside a PostgreSQL
//! transaction aborts the whole transaction; SQLite only fails the statement. So every
//! write runs in a savepoint of its own inside the batch (a failed write undoes only
//! itself, as the trait promises), and a failed read marks the transaction aborted:
//! its `commit` then fails (503 to the batch's posters) instead of silently rolling
//! back. Event ids come from a counter row, not a sequence, so they stay gap-free
//! (`event_high_water`: ids `1..=n` exist) when a batch rolls back. A post locks its
//! room's row first, so within a room message ids and log sequence numbers grow in
//! commit order. Names are unique by `lower(name)` (the database is created without
//! locale, so `lower` folds ASCII only, like SQLite's `NOCASE`).
//!
//! The schema migrations are SQLite's (`store::schema`, in the PostgreSQL dialect),
//! versioned by `pchat_schema.version`, applied under an advisory lock so members starting together
//! migrate once.

use super::{
    schema, sql, Arg, FileRecord, HistoryQuery, NewLogEntry, NewMessage, OpenSession, RoomAttrs,
    RoomColumns, RoomRecord, Store, StoreError, StoredMessage,
};
use crate::compliance::NewEvent;
use ::postgres::types::ToSql;
use ::postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// The channel members LISTEN on: one notification per room with new log entries,
/// delivered when the writing transaction commits.
pub const NOTIFY_CHANNEL: &str = "pchat_pool";

/// The connection and its prepared statements, owned by the connection thread.
pub struct Conn {
    client: Client,
    cache: HashMap<&'static str, Statement>,
}

impl Conn {
    fn st(&mut self, sql: &'static str) -> Result<Statement, ::postgres::Error> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.cache.insert(sql, s.clone());
        Ok(s)
    }

    /// Runs `sql` (prepared once, then from the cache) with `p` bound through `run`:
    /// `Client::query` or `Client::execute`.
    fn prepared<T>(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
        run: Run<T>,
    ) -> Result<T, ::postgres::Error> {
        let st = self.st(sql)?;
        run(&mut self.client, &st, p)
    }

    fn query(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, ::postgres::Error> {
        self.prepared(sql, p, Client::query::<Statement>)
    }

    fn exec(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, ::postgres::Error> {
        self.prepared(sql, p, Client::execute::<Statement>)
    }

    fn strings(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<String>, ::postgres::Error> {
        Ok(self.query(sql, p)?.iter().map(|r| r.get(0)).collect())
    }
}

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// A prepared statement's runner: `Client::query` or `Client::execute`.
type Run<T> = fn(&mut Client, &Statement, &[&(dyn ToSql + Sync)]) -> Result<T, ::postgres::Error>;

/// PostgreSQL-backed store (see the module docs). Not `Sync`: one owner.
pub struct PgStore {
    jobs: mpsc::Sender<Job>,
    /// Incremented by the connection thread each time it connects again.
    generation: Arc<AtomicU64>,
    /// `generation` when the open transaction began.
    tx_generation: u64,
    in_tx: bool,
    /// A `BEGIN` issued by [`Store::savepoint`] outside a transaction.
    savepoint_tx: bool,
    savepoints: u32,
    /// A statement failed inside the transaction: PostgreSQL will not commit it.
    aborted: bool,
    /// The open transaction holds the pool's write lock ([`WRITE_LOCK`]).
    tx_write_locked: bool,
}

/// Advisory lock key every writing transaction takes (`pg_advisory_xact_lock`, held
/// to its end) before its first row lock. Writes lock rows in different orders - a
/// batch locks the event counter row and each of its posts' room rows - so two
/// members' batches could deadlock (PostgreSQL then aborts one write, over and over
/// under load). Taking this lock first orders all writing transactions of the pool:
/// with group commit each member commits a batch per transaction, so the pool's
/// commits stay batched. Reads take no lock.
const WRITE_LOCK: i64 = 726_175;

fn pg(e: ::postgres::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

impl PgStore {
    /// Connects to `url` (`postgresql://USER@HOST:PORT/DB`, libpq syntax, no TLS) on a
    /// thread of its own and migrates the schema. Errors: [`StoreError::Db`] (bad URL,
    /// refused, authentication, SQL), [`StoreError::SchemaTooNew`].
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        let url = url.to_string();
        let generation = Arc::new(AtomicU64::new(0));
        let thread_gen = generation.clone();
        std::thread::Builder::new()
            .name("pchat-pg".into())
            .spawn(move || {
                let client = match Client::connect(&url, NoTls) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{url}: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut conn = Conn {
                    client,
                    cache: HashMap::new(),
                };
                while let Ok(job) = rx.recv() {
                    if conn.client.is_closed() {
                        // The server restarted or the network broke: connect again; an
                        // open transaction is lost, which `commit` detects.
                        if let Ok(c) = Client::connect(&url, NoTls) {
                            conn.client = c;
                            conn.cache.clear();
                            thread_gen.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Db(format!("postgres thread: {e}")))?;
        ready
            .recv()
            .map_err(|_| StoreError::Db("postgres thread ended".into()))?
            .map_err(StoreError::Db)?;
        let mut store = PgStore {
            jobs,
            generation,
            tx_generation: 0,
            in_tx: false,
            tx_write_locked: false,
            savepoint_tx: false,
            savepoints: 0,
            aborted: false,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Runs `f` on the connection thread and waits for its result.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, ::postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |c| {
                let _ = tx.send(f(c).map_err(pg));
            }))
            .map_err(|_| StoreError::Db("postgres connection thread gone".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Db("postgres connection thread gone".into()))?
    }

    fn tx_open(&self) -> bool {
        self.in_tx || self.savepoints > 0
    }

    /// A read; inside a transaction a failure aborts it (see the module docs).
    fn read<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, ::postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let r = self.run(f);
        if r.is_err() && self.tx_open() {
            self.aborted = true;
        }
        r
    }

    /// A write: in a savepoint of its own inside a transaction, else in a transaction
    /// of its own; on failure nothing of it is kept and the transaction goes on.
    fn write<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, ::postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let nested = self.tx_open();
        let lock = !nested || !self.tx_write_locked;
        let r = self.run(move |c| {
            if lock && nested {
                c.client
                    .batch_execute(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"))?;
            }
            let (open, keep, undo) = if nested {
                (
                    "SAVEPOINT pchat_write",
                    "RELEASE pchat_write",
                    "ROLLBACK TO pchat_write; RELEASE pchat_write",
                )
            } else {
                ("BEGIN", "COMMIT", "ROLLBACK")
            };
            c.client.batch_execute(open)?;
            let locked = match lock && !nested {
                true => c
                    .client
                    .batch_execute(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})")),
                false => Ok(()),
            };
            match locked.and_then(|()| f(c)) {
                Ok(v) => c.client.batch_execute(keep).map(|()| v),
                Err(e) => {
                    let _ = c.client.batch_execute(undo);
                    Err(e)
                }
            }
        });
        if r.is_ok() && nested {
            self.tx_write_locked = true;
        }
        if r.is_err() && nested {
            // Only if even the savepoint could not be undone is the transaction lost;
            // a probe tells which.
            if self.run(|c| c.client.batch_execute("SELECT 1")).is_err() {
                self.aborted = true;
            }
        }
        r
    }

    /// Current schema version (`pchat_schema.version`).
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        self.run(|c| {
            let r = c
                .client
                .query_one("SELECT version FROM pchat_schema", &[])?;
            Ok(i64::from(r.get::<_, i32>(0)))
        })
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found = self.run(|c| {
            c.client.batch_execute(
                "SET client_min_messages = warning;
                 SELECT pg_advisory_lock(726174);
                 CREATE TABLE IF NOT EXISTS pchat_schema (version INTEGER NOT NULL);
                 INSERT INTO pchat_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM pchat_schema);",
            )?;
            let r = c
                .client
                .query_one("SELECT version FROM pchat_schema", &[])?;
            Ok(i64::from(r.get::<_, i32>(0)))
        });
        let result = found.and_then(|found| {
            let migrations = schema::migrations(schema::Dialect::Postgres);
            let supported = migrations.len() as i64;
            if found > supported {
                return Err(StoreError::SchemaTooNew { found, supported });
            }
            for (i, sql) in migrations.into_iter().enumerate().skip(found as usize) {
                let version = (i + 1) as i32;
                self.run(move |c| {
                    let mut tx = c.client.transaction()?;
                    tx.batch_execute(&sql)?;
                    tx.execute("UPDATE pchat_schema SET version = $1", &[&version])?;
                    tx.commit()
                })?;
            }
            Ok(())
        });
        let _ = self.run(|c| c.client.batch_execute("SELECT pg_advisory_unlock(726174)"));
        result
    }

    fn end_tx(&mut self, sql: &'static str) -> Result<(), StoreError> {
        self.in_tx = false;
        self.savepoint_tx = false;
        self.savepoints = 0;
        self.aborted = false;
        self.tx_write_locked = false;
        self.run(move |c| c.client.batch_execute(sql))
    }
}

/// A row of a shared query as a [`sql::Row`] (text, integer, boolean and NULL
/// columns; booleans as 0/1).
fn shared_row(r: &Row) -> Result<sql::Row, StoreError> {
    use ::postgres::types::Type;
    let value = |(i, col): (usize, &::postgres::Column)| -> Result<sql::Value, StoreError> {
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)
                .map(|v| v.map(sql::Value::Int))
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|n| sql::Value::Int(n.into())))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|b| sql::Value::Int(b.into())))
        } else {
            r.try_get::<_, Option<String>>(i)
                .map(|v| v.map(sql::Value::Text))
        };
        Ok(v.map_err(pg)?.unwrap_or(sql::Value::Null))
    };
    r.columns()
        .iter()
        .enumerate()
        .map(value)
        .collect::<Result<_, _>>()
        .map(sql::Row)
}

fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// `args` as PostgreSQL statement parameters.
fn pg_args(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Arg::Text(s) => s as &(dyn ToSql + Sync),
            Arg::Int(n) => n as &(dyn ToSql + Sync),
        })
        .collect()
}

impl Store for PgStore {
    fn sql_exec(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<u64, StoreError> {
        self.write(move |c| c.exec(sql, &pg_args(&args)))
    }

    fn sql_query(
        &mut self,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<Vec<sql::Row>, StoreError> {
        let rows = self.read(move |c| c.query(sql, &pg_args(&args)))?;
        rows.iter().map(shared_row).collect()
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            self.run(|c| c.client.batch_execute("BEGIN"))?;
            self.in_tx = true;
            self.aborted = false;
            self.tx_write_locked = false;
            self.tx_generation = self.generation.load(Ordering::SeqCst);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            return Ok(());
        }
        if self.generation.load(Ordering::SeqCst) != self.tx_generation {
            let _ = self.end_tx("ROLLBACK");
            return Err(StoreError::Db(
                "the connection was lost during the transaction: nothing of it was kept".into(),
            ));
        }
        if self.aborted {
            let _ = self.end_tx("ROLLBACK");
            return Err(StoreError::Db(
                "a statement of the transaction failed: rolled back".into(),
            ));
        }
        let r = self.end_tx("COMMIT");
        if r.is_err() {
            let _ = self.run(|c| c.client.batch_execute("ROLLBACK"));
        }
        // Connected again just before the COMMIT: it ended no transaction of ours.
        if r.is_ok() && self.generation.load(Ordering::SeqCst) != self.tx_generation {
            return Err(StoreError::Db(
                "the connection was lost during the transaction: nothing of it was kept".into(),
            ));
        }
        r
    }

    fn rollback(&mut self) {
        if self.in_tx || self.savepoint_tx {
            let _ = self.end_tx("ROLLBACK");
        }
        self.in_tx = false;
        self.savepoints = 0;
    }

    fn upsert_room(&mut self, room: &RoomRecord) -> Result<(), StoreError> {
        let room = room.clone();
        self.write(move |c| {
            let [name, description, topic, privacy, category, room_type, invitations] =
                room.attrs.columns();
            c.exec(
                "INSERT INTO rooms (guid, name, description, topic, privacy, category, room_type,
                   invitations, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (guid) DO UPDATE SET name = excluded.name, description = excluded.description,
                   topic = excluded.topic, privacy = excluded.privacy, category = excluded.category,
                   room_type = excluded.room_type, invitations = excluded.invitations,
                   disabled = excluded.disabled",
                &[
                    &room.guid,
                    &name,
                    &description,
                    &topic,
                    &privacy,
                    &category,
                    &room_type,
                    &invitations,
                    &room.attrs.disabled,
                ],
            )?;
            c.exec(sql::DELETE_ROLES, &[&room.guid])?;
            c.exec(
                sql::DELETE_PRESENTERS,
                &[&room.guid],
            )?;
            for p in &room.presenters {
                c.exec(
                    "INSERT INTO room_presenters (room_guid, user_uri) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&room.guid, p],
                )?;
            }
            let roles = [("member", &room.members), ("manager", &room.managers)];
            for (role, users) in roles {
                for u in users {
                    c.exec(
                        "INSERT INTO room_roles (room_guid, user_uri, role) VALUES ($1, $2, $3)
                         ON CONFLICT DO NOTHING",
                        &[&room.guid, u, &role],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn load_rooms(&mut self) -> Result<Vec<RoomRecord>, StoreError> {
        self.read(|c| {
            let heads = c.query(
                "SELECT guid, name, description, topic, privacy, category, room_type, invitations,
                   disabled FROM rooms ORDER BY lower(name), name",
                &[],
            )?;
            let mut rooms = Vec::with_capacity(heads.len());
            for r in heads {
                let guid: String = r.get(0);
                let members = c.strings(sql::ROLES, &[&guid, &"member"])?;
                let managers = c.strings(sql::ROLES, &[&guid, &"manager"])?;
                let presenters = c.strings(sql::PRESENTERS, &[&guid])?;
                let text: RoomColumns = std::array::from_fn(|i| r.get(i + 1));
                rooms.push(RoomRecord {
                    guid,
                    attrs: RoomAttrs::from_columns(text, r.get(8)),
                    members,
                    managers,
                    presenters,
                });
            }
            Ok(rooms)
        })
    }

    fn append_message(&mut self, msg: &NewMessage) -> Result<i64, StoreError> {
        let msg = msg.clone();
        let id = self.write(move |c| {
            // The room's row is locked first: a room's message ids grow in commit order.
            let rows = c.query(
                "WITH room AS (SELECT guid FROM rooms WHERE guid = $1 FOR UPDATE)
                 INSERT INTO messages (room_guid, author, ts_ms, text, client_msgid)
                 SELECT guid, $2, $3, $4, $5 FROM room RETURNING id",
                &[
                    &msg.room_guid,
                    &msg.author,
                    &msg.ts_ms,
                    &msg.text,
                    &msg.client_msgid,
                ],
            )?;
            Ok(rows.first().map(|r| r.get::<_, i64>(0)))
        })?;
        id.ok_or_else(|| StoreError::Db("no such room (foreign key)".into()))
    }

    fn history(
        &mut self,
        room_guid: &str,
        q: &HistoryQuery,
        n: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let (room, n, q) = (room_guid.to_string(), i64::from(n), q.clone());
        // The rows, and whether they are oldest first already.
        let (rows, ascending) = self.read(move |c| {
            Ok(match &q {
                HistoryQuery::Last => (c.query(
                    "SELECT id, room_guid, author, ts_ms, text FROM messages WHERE room_guid = $1
                     ORDER BY id DESC LIMIT $2",
                    &[&room, &n],
                )?, false),
                HistoryQuery::Before(id) => (c.query(
                    "SELECT id, room_guid, author, ts_ms, text FROM messages WHERE room_guid = $1
                     AND id < $3 ORDER BY id DESC LIMIT $2",
                    &[&room, &n, id],
                )?, false),
                HistoryQuery::Since(ts) => (c.query(
                    "SELECT id, room_guid, author, ts_ms, text FROM messages WHERE room_guid = $1
                     AND ts_ms >= $3 ORDER BY id ASC LIMIT $2",
                    &[&room, &n, ts],
                )?, true),
                HistoryQuery::Search {
                    keyword,
                    author,
                    from_ms,
                    to_ms,
                } => (c.query(
                    "SELECT id, room_guid, author, ts_ms, text FROM messages WHERE room_guid = $1
                     AND strpos(lower(text), lower($3)) > 0
                     AND ($4::TEXT IS NULL OR lower(author) = lower($4::TEXT))
                     AND ($5::BIGINT IS NULL OR ts_ms >= $5::BIGINT)
                     AND ($6::BIGINT IS NULL OR ts_ms <= $6::BIGINT)
                     ORDER BY id DESC LIMIT $2",
                    &[&room, &n, keyword, author, from_ms, to_ms],
                )?, false),
            })
        })?;
        let mut v = rows
            .iter()
            .map(|r| sql::message(&shared_row(r)?))
            .collect::<Result<Vec<_>, _>>()?;
        if !ascending {
            v.reverse();
        }
        Ok(v)
    }

    fn follow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        let (user, room) = (user.to_string(), room_guid.to_string());
        self.write(move |c| {
            c.exec(
                "INSERT INTO followed (user_uri, room_guid, seq)
                 SELECT $1, $2, COALESCE(MAX(seq), 0) + 1 FROM followed WHERE user_uri = $1
                 ON CONFLICT DO NOTHING",
                &[&user, &room],
            )
            .map(|_| ())
        })
    }

    fn savepoint(&mut self) -> Result<(), StoreError> {
        let own = !self.tx_open();
        let sql = if own {
            "BEGIN; SAVEPOINT action"
        } else {
            sql::SAVEPOINT
        };
        self.run(move |c| c.client.batch_execute(sql))?;
        self.savepoint_tx |= own;
        self.savepoints += 1;
        Ok(())
    }

    fn release_savepoint(&mut self, keep: bool) -> Result<(), StoreError> {
        if !sql::pop_savepoint(&mut self.savepoints) {
            return Ok(());
        }
        // A write lock taken inside an undone savepoint goes with it.
        self.tx_write_locked &= keep;
        let sql = sql::release_savepoint(keep);
        let r = self.run(move |c| c.client.batch_execute(sql));
        if r.is_err() && self.tx_open() {
            self.aborted = true;
        }
        if self.savepoints == 0 && self.savepoint_tx && !self.in_tx {
            let end = if r.is_ok() && !self.aborted {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            return r.and(self.end_tx(end));
        }
        r
    }

    fn record_event(&mut self, ev: &NewEvent) -> Result<i64, StoreError> {
        let ev = ev.clone();
        self.write(move |c| {
            let r = c.query(
                "WITH n AS (UPDATE pchat_counters SET value = value + 1 WHERE name = 'event'
                   RETURNING value)
                 INSERT INTO compliance_outbox (id, kind, room_uri, room_name, user_uri, ts_ms, content)
                 SELECT value, $1, $2, $3, $4, $5, $6 FROM n RETURNING id",
                &[
                    &ev.kind.as_str(),
                    &ev.room_uri,
                    &ev.room_name,
                    &ev.user,
                    &ev.ts_ms,
                    &ev.content,
                ],
            )?;
            Ok(r[0].get(0))
        })
    }

    fn open_session(&mut self, server: &str, s: &OpenSession) -> Result<(), StoreError> {
        let (server, s) = (server.to_string(), s.clone());
        self.write(move |c| {
            c.exec(
                "INSERT INTO open_sessions (server, user_uri, room_uri, room_name)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&server, &s.user, &s.room_uri, &s.room_name],
            )
            .map(|_| ())
        })
    }

    fn outbox_delete(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.write(move |c| {
            c.exec("DELETE FROM compliance_outbox WHERE id = ANY($1)", &[&ids])
                .map(|_| ())
        })
    }

    fn event_high_water(&mut self) -> Result<i64, StoreError> {
        self.read(|c| {
            let r = c.query("SELECT value FROM pchat_counters WHERE name = 'event'", &[])?;
            Ok(r.first().map_or(0, |r| r.get(0)))
        })
    }

    fn set_followed(&mut self, user: &str, room_guids: &[String]) -> Result<(), StoreError> {
        let (user, guids) = (user.to_string(), room_guids.to_vec());
        self.write(move |c| {
            let mut keep: Vec<String> = Vec::new();
            for (i, g) in guids.iter().enumerate() {
                if keep.contains(g) {
                    continue;
                }
                keep.push(g.clone());
                c.exec(
                    "INSERT INTO followed (user_uri, room_guid, seq) VALUES ($1, $2, $3)
                     ON CONFLICT (user_uri, room_guid) DO UPDATE SET seq = excluded.seq",
                    &[&user, g, &(i as i64 + 1)],
                )?;
            }
            c.exec(
                "DELETE FROM followed WHERE user_uri = $1 AND NOT (room_guid = ANY($2))",
                &[&user, &keep],
            )
            .map(|_| ())
        })
    }

    fn set_pref(&mut self, user: &str, label: &str, content: &str) -> Result<u64, StoreError> {
        let (user, label, content) = (user.to_string(), label.to_string(), content.to_string());
        self.write(move |c| {
            let r = c.query(
                "INSERT INTO prefs (user_uri, label, seqid, content) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (user_uri, label) DO UPDATE SET seqid = prefs.seqid + 1,
                   content = excluded.content RETURNING seqid",
                &[&user, &label, &content],
            )?;
            Ok(count(r[0].get(0)))
        })
    }

    fn put_file(&mut self, f: &FileRecord) -> Result<(), StoreError> {
        let f = f.clone();
        self.write(move |c| {
            c.exec(
                "INSERT INTO files (room_guid, name, sha256, size, uploader, ts_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (room_guid, name) DO UPDATE SET sha256 = excluded.sha256,
                   size = excluded.size, uploader = excluded.uploader, ts_ms = excluded.ts_ms",
                &[
                    &f.room_guid,
                    &f.name,
                    &f.sha256,
                    &(f.size as i64),
                    &f.uploader,
                    &f.ts_ms,
                ],
            )
            .map(|_| ())
        })
    }

    fn log_append(&mut self, e: &NewLogEntry) -> Result<i64, StoreError> {
        let e = e.clone();
        let seq = self.write(move |c| {
            let r = c.query(sql::NEXT_LOG_SEQ, &[&e.head.room_guid])?;
            let Some(seq) = r.first().map(|r| r.get::<_, i64>(0)) else {
                return Ok(None);
            };
            c.exec(
                sql::LOG_APPEND,
                &[
                    &e.head.room_guid,
                    &seq,
                    &e.head.origin,
                    &e.head.dialog,
                    &e.head.kind.as_str(),
                    &e.head.user,
                    &e.head.ts_ms,
                    &e.msg_id,
                ],
            )?;
            Ok(Some(seq))
        })?;
        seq.ok_or_else(|| StoreError::Db("no such room (foreign key)".into()))
    }
}
