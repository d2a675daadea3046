//! The compliance database (the seed's mgccomp role): its own SQLite file holding the
//! events moved out of the store's outbox and the adapter batches.
//!
//! Tables: `events` (keyed by event id; `batch_id` set once the event belongs to a
//! batch) and `batches` (`id`, `state` = `pending` | `done`, event count, first/last
//! event id). A batch is recorded (`pending`) before the adapter runs and marked `done`
//! in the same transaction that deletes its events; done batches stay as an audit log.

use super::adapter::Batch;
use super::Event;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const MIGRATIONS: &[&str] = &[
    // 1: events and batches.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        room_uri TEXT NOT NULL,
        room_name TEXT NOT NULL,
        user_uri TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        content TEXT NOT NULL,
        batch_id INTEGER
     );
     CREATE INDEX events_by_batch ON events(batch_id, id);
     CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('pending','done')),
        events INTEGER NOT NULL,
        first_event INTEGER NOT NULL,
        last_event INTEGER NOT NULL
     );",
];

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(format!("compliance db: {e}"))
}

/// A recorded batch as listed by [`ComplianceDb::batches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// Batch id (1, 2, ...: the next integer when recorded).
    pub id: u64,
    /// `true` once the adapter confirmed and the events were deleted.
    pub done: bool,
    /// Number of events in the batch.
    pub events: u64,
}

/// The compliance database. One owner (the compliance worker, or `verify`).
pub struct ComplianceDb {
    conn: Connection,
}

impl ComplianceDb {
    /// Opens (creating with its directory if missing) and migrates the database at
    /// `path`. WAL + `synchronous=FULL`: a committed move or batch survives power loss.
    /// Errors: [`StoreError::Db`] (I/O, SQL), [`StoreError::SchemaTooNew`].
    pub fn open(path: &Path) -> Result<ComplianceDb, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Db(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        let mut me = ComplianceDb { conn };
        me.migrate()?;
        Ok(me)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        use crate::store::sqlite::{migrate, Migration};
        migrate(&mut self.conn, MIGRATIONS).map_err(|e| match e {
            Migration::Db(e) => db(e),
            Migration::TooNew { found, supported } => StoreError::SchemaTooNew { found, supported },
        })
    }

    /// Inserts `events` in one transaction, ignoring ids already present (idempotent
    /// move). Returns how many were new.
    pub fn insert_events(&mut self, events: &[Event]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        let mut new = 0;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (id, kind, room_uri, room_name, user_uri, ts_ms, content)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db)?;
            for e in events {
                new += st
                    .execute(params![
                        e.id,
                        e.kind.as_str(),
                        e.room_uri,
                        e.room_name,
                        e.user,
                        e.ts_ms,
                        e.content
                    ])
                    .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(new)
    }

    fn batch_events(&self, id: u64) -> Result<Vec<Event>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, kind, room_uri, room_name, user_uri, ts_ms, content FROM events
                 WHERE batch_id = ?1 ORDER BY id",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![id as i64], crate::store::sqlite::event_row)
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// The oldest batch recorded but not done (a run interrupted by a crash or an
    /// adapter failure), with its events in id order.
    pub fn pending_batch(&mut self) -> Result<Option<Batch>, StoreError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM batches WHERE state = 'pending' ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(id) = id else { return Ok(None) };
        let id = id as u64;
        Ok(Some(Batch {
            id,
            events: self.batch_events(id)?,
        }))
    }

    /// Records a new batch of up to `limit` unbatched events (lowest ids first) under the
    /// next batch id, in one transaction; `None` when there is nothing to export.
    pub fn new_batch(&mut self, limit: u32) -> Result<Option<Batch>, StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        let ids: Vec<i64> = {
            let mut st = tx
                .prepare_cached("SELECT id FROM events WHERE batch_id IS NULL ORDER BY id LIMIT ?1")
                .map_err(db)?;
            let rows = st
                .query_map(params![limit.max(1)], |r| r.get(0))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(None);
        };
        let id: i64 = tx
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM batches", [], |r| {
                r.get(0)
            })
            .map_err(db)?;
        tx.execute(
            "INSERT INTO batches (id, state, events, first_event, last_event) VALUES (?1, 'pending', ?2, ?3, ?4)",
            params![id, ids.len() as i64, first, last],
        )
        .map_err(db)?;
        {
            let mut st = tx
                .prepare_cached("UPDATE events SET batch_id = ?1 WHERE id = ?2")
                .map_err(db)?;
            for e in &ids {
                st.execute(params![id, e]).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        let id = id as u64;
        Ok(Some(Batch {
            id,
            events: self.batch_events(id)?,
        }))
    }

    /// The adapter confirmed batch `id`: deletes its events and marks it done, in one
    /// transaction.
    pub fn finish_batch(&mut self, id: u64) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute("DELETE FROM events WHERE batch_id = ?1", params![id as i64])
            .map_err(db)?;
        tx.execute(
            "UPDATE batches SET state = 'done' WHERE id = ?1",
            params![id as i64],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Every event still held (not yet confirmed by the adapter), id order, with its
    /// batch id if it belongs to a pending batch.
    pub fn events(&mut self) -> Result<Vec<(Event, Option<u64>)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, kind, room_uri, room_name, user_uri, ts_ms, content, batch_id FROM events ORDER BY id",
            )
            .map_err(db)?;
        let rows = st
            .query_map([], |r| {
                let b: Option<i64> = r.get(7)?;
                Ok((crate::store::sqlite::event_row(r)?, b.map(|b| b as u64)))
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// Every batch ever recorded, id order.
    pub fn batches(&mut self) -> Result<Vec<BatchRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, state, events FROM batches ORDER BY id")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| {
                Ok(BatchRecord {
                    id: r.get::<_, i64>(0)? as u64,
                    done: r.get::<_, String>(1)? == "done",
                    events: r.get::<_, i64>(2)? as u64,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }
}
