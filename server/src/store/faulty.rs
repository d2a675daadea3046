//! [`FaultyStore`]: a [`Store`] that wraps another and fails while a
//! [`StoreFault`] is armed on its [`Faults`] handle - I/O error, busy, disk full - so
//! scenarios can check that nothing acknowledged is lost and nothing half-written shows.
//! A failed commit rolls the inner transaction back ("nothing of the failed call was
//! kept", [`StoreError`]).

use super::sql::Row;
use super::{
    Arg, FileRecord, HistoryQuery, NewLogEntry, NewMessage, OpenSession, RoomRecord, Store,
    StoreError, StoredMessage,
};
use crate::compliance::NewEvent;
use crate::fault::{Faults, StoreFault};

/// What a [`HookedStore`] is about to do, for its [`StoreHook`] to allow or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `BEGIN`.
    Begin,
    /// `COMMIT` (on failure the wrapper rolls the inner transaction back).
    Commit,
    /// A read.
    Read,
    /// A write (including savepoints and outbox events).
    Write,
    /// Deleting moved events from the compliance outbox.
    OutboxDelete,
    /// Appending to the pool's room log ([`Store::log_append`]), a write.
    LogWrite,
}

/// Decides, before each store call, whether it fails (tests and the simulator).
pub trait StoreHook: Send {
    /// `Err` makes the call fail with that error without reaching the inner store.
    fn before(&mut self, op: StoreOp) -> Result<(), StoreError>;
    /// After a `COMMIT` that succeeded (the simulator's pool wake, `super::bell`).
    fn committed(&mut self) {}
    /// After a rollback (of the transaction or of a failed commit).
    fn rolled_back(&mut self) {}
}

/// A [`Store`] that asks its hook before every call and otherwise delegates to the
/// store it wraps. One wrapper for every kind of injected store failure, so the long
/// [`Store`] trait is delegated in one place.
pub struct HookedStore<H> {
    inner: Box<dyn Store>,
    hook: H,
}

/// A store that fails on demand while a [`StoreFault`] is armed on its [`Faults`]
/// handle (see the module docs).
pub type FaultyStore = HookedStore<Faults>;

impl<H: StoreHook> HookedStore<H> {
    /// Wraps `inner`; `hook` decides which calls fail.
    pub fn new(inner: Box<dyn Store>, hook: H) -> HookedStore<H> {
        HookedStore { inner, hook }
    }
}

impl StoreHook for Faults {
    fn before(&mut self, op: StoreOp) -> Result<(), StoreError> {
        let msg = match (self.store_fault(), op) {
            (None, _) => return Ok(()),
            (Some(StoreFault::Io), _) => "disk I/O error (injected)",
            (Some(StoreFault::Busy), StoreOp::Read) => return Ok(()),
            (Some(StoreFault::Busy), _) => "database is locked (injected)",
            (Some(StoreFault::DiskFull), StoreOp::Read | StoreOp::Begin) => return Ok(()),
            (Some(StoreFault::DiskFull), _) => "database or disk is full (injected)",
        };
        Err(StoreError::Db(msg.to_string()))
    }
}

/// Delegates a store method after asking the hook about `$op`.
macro_rules! hooked {
    ($(fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty => $op:ident;)*) => {
        $(fn $name(&mut self $(, $arg: $ty)*) -> $ret {
            self.hook.before(StoreOp::$op)?;
            self.inner.$name($($arg),*)
        })*
    };
}

impl<H: StoreHook> Store for HookedStore<H> {
    fn commit(&mut self) -> Result<(), StoreError> {
        if let Err(e) = self.hook.before(StoreOp::Commit) {
            self.inner.rollback();
            self.hook.rolled_back();
            return Err(e);
        }
        let done = self.inner.commit();
        match done {
            Ok(()) => self.hook.committed(),
            Err(_) => self.hook.rolled_back(),
        }
        done
    }
    fn rollback(&mut self) {
        self.inner.rollback();
        self.hook.rolled_back();
    }
    fn release_savepoint(&mut self, keep: bool) -> Result<(), StoreError> {
        if keep {
            if let Err(e) = self.hook.before(StoreOp::Write) {
                let _ = self.inner.release_savepoint(false);
                return Err(e);
            }
        }
        self.inner.release_savepoint(keep)
    }
    hooked! {
        fn begin(&mut self) -> Result<(), StoreError> => Begin;
        fn sql_exec(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<u64, StoreError> => Write;
        fn sql_query(&mut self, sql: &'static str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> => Read;
        fn upsert_room(&mut self, room: &RoomRecord) -> Result<(), StoreError> => Write;
        fn load_rooms(&mut self) -> Result<Vec<RoomRecord>, StoreError> => Read;
        fn append_message(&mut self, msg: &NewMessage) -> Result<i64, StoreError> => Write;
        fn history(&mut self, room_guid: &str, q: &HistoryQuery, n: u32) -> Result<Vec<StoredMessage>, StoreError> => Read;
        fn follow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> => Write;
        fn savepoint(&mut self) -> Result<(), StoreError> => Write;
        fn record_event(&mut self, ev: &NewEvent) -> Result<i64, StoreError> => Write;
        fn open_session(&mut self, server: &str, s: &OpenSession) -> Result<(), StoreError> => Write;
        fn outbox_delete(&mut self, ids: &[i64]) -> Result<(), StoreError> => OutboxDelete;
        fn event_high_water(&mut self) -> Result<i64, StoreError> => Read;
        fn set_followed(&mut self, user: &str, room_guids: &[String]) -> Result<(), StoreError> => Write;
        fn set_pref(&mut self, user: &str, label: &str, content: &str) -> Result<u64, StoreError> => Write;
        fn put_file(&mut self, file: &FileRecord) -> Result<(), StoreError> => Write;
        fn log_append(&mut self, e: &NewLogEntry) -> Result<i64, StoreError> => LogWrite;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn msg(text: &str) -> NewMessage {
        NewMessage {
            client_msgid: None,
            room_guid: "g".into(),
            author: "sip:a@contoso.com".into(),
            ts_ms: 1,
            text: text.into(),
        }
    }

    fn store(faults: &Faults) -> FaultyStore {
        let mut inner = SqliteStore::in_memory().expect("in-memory store");
        inner
            .upsert_room(&RoomRecord::open("g", "R"))
            .expect("room");
        FaultyStore::new(Box::new(inner), faults.clone())
    }

    #[test]
    fn failed_commit_keeps_nothing_and_clearing_restores_service() {
        let faults = Faults::default();
        let mut s = store(&faults);
        s.begin().expect("begin");
        s.append_message(&msg("a")).expect("append");
        faults.set_store_fault(Some(StoreFault::DiskFull));
        let e = s.commit().expect_err("disk full fails the commit");
        assert!(e.to_string().contains("disk is full"), "{e}");
        assert!(s.append_message(&msg("b")).is_err());
        assert_eq!(s.message_count("g").expect("reads work"), 0);
        faults.set_store_fault(None);
        s.begin().expect("begin");
        s.append_message(&msg("c")).expect("append");
        s.commit().expect("commit");
        let texts: Vec<_> = s
            .last_messages("g", 10)
            .expect("read")
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["c"]);
    }

    #[test]
    fn kinds_fail_what_they_should() {
        let faults = Faults::default();
        let mut s = store(&faults);
        faults.set_store_fault(Some(StoreFault::Busy));
        assert!(s.begin().is_err());
        assert!(s.message_count("g").is_ok());
        faults.set_store_fault(Some(StoreFault::Io));
        assert!(s.message_count("g").is_err());
        assert!(s.followed("sip:a@contoso.com").is_err());
    }
}
