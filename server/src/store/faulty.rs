//! [`FaultyStore`]: a [`Store`] that wraps another and fails while a
//! [`StoreFault`] is armed on its [`Faults`] handle - I/O error, busy, disk full - so
//! scenarios can check that nothing acknowledged is lost and nothing half-written shows.
//! A failed commit rolls the inner transaction back ("nothing of the failed call was
//! kept", [`StoreError`]).

use super::{
    HistoryQuery, Invitation, NewMessage, Pref, RoomRecord, Store, StoreError, StoredMessage,
};
use crate::compliance::{Event, NewEvent};
use crate::fault::{Faults, StoreFault};

/// A store that fails on demand (see the module docs).
pub struct FaultyStore {
    inner: Box<dyn Store>,
    faults: Faults,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Begin,
    Write,
    Commit,
    Read,
}

impl FaultyStore {
    /// Wraps `inner`; it fails while `faults` has a store fault armed.
    pub fn new(inner: Box<dyn Store>, faults: Faults) -> FaultyStore {
        FaultyStore { inner, faults }
    }

    fn check(&self, op: Op) -> Result<(), StoreError> {
        let msg = match (self.faults.store_fault(), op) {
            (None, _) => return Ok(()),
            (Some(StoreFault::Io), _) => "disk I/O error (injected)",
            (Some(StoreFault::Busy), Op::Read) => return Ok(()),
            (Some(StoreFault::Busy), _) => "database is locked (injected)",
            (Some(StoreFault::DiskFull), Op::Read | Op::Begin) => return Ok(()),
            (Some(StoreFault::DiskFull), _) => "database or disk is full (injected)",
        };
        Err(StoreError::Db(msg.to_string()))
    }
}

impl Store for FaultyStore {
    fn begin(&mut self) -> Result<(), StoreError> {
        self.check(Op::Begin)?;
        self.inner.begin()
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        if let Err(e) = self.check(Op::Commit) {
            self.inner.rollback();
            return Err(e);
        }
        self.inner.commit()
    }
    fn rollback(&mut self) {
        self.inner.rollback()
    }
    fn upsert_room(&mut self, room: &RoomRecord) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.upsert_room(room)
    }
    fn load_rooms(&mut self) -> Result<Vec<RoomRecord>, StoreError> {
        self.check(Op::Read)?;
        self.inner.load_rooms()
    }
    fn append_message(&mut self, msg: &NewMessage) -> Result<i64, StoreError> {
        self.check(Op::Write)?;
        self.inner.append_message(msg)
    }
    fn last_messages(&mut self, room_guid: &str, n: u32) -> Result<Vec<StoredMessage>, StoreError> {
        self.check(Op::Read)?;
        self.inner.last_messages(room_guid, n)
    }
    fn message_count(&mut self, room_guid: &str) -> Result<u64, StoreError> {
        self.check(Op::Read)?;
        self.inner.message_count(room_guid)
    }
    fn follow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.follow(user, room_guid)
    }
    fn unfollow(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.unfollow(user, room_guid)
    }
    fn followed(&mut self, user: &str) -> Result<Vec<String>, StoreError> {
        self.check(Op::Read)?;
        self.inner.followed(user)
    }
    fn history(
        &mut self,
        room_guid: &str,
        q: &HistoryQuery,
        n: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.check(Op::Read)?;
        self.inner.history(room_guid, q, n)
    }
    fn savepoint(&mut self) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.savepoint()
    }
    fn release_savepoint(&mut self, keep: bool) -> Result<(), StoreError> {
        if keep {
            if let Err(e) = self.check(Op::Write) {
                let _ = self.inner.release_savepoint(false);
                return Err(e);
            }
        }
        self.inner.release_savepoint(keep)
    }
    fn record_event(&mut self, ev: &NewEvent) -> Result<i64, StoreError> {
        self.check(Op::Write)?;
        self.inner.record_event(ev)
    }
    fn outbox_peek(&mut self, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.check(Op::Read)?;
        self.inner.outbox_peek(limit)
    }
    fn outbox_delete(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.outbox_delete(ids)
    }
    fn event_high_water(&mut self) -> Result<i64, StoreError> {
        self.check(Op::Read)?;
        self.inner.event_high_water()
    }
    fn messages_after(
        &mut self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.check(Op::Read)?;
        self.inner.messages_after(after_id, limit)
    }
    fn set_followed(&mut self, user: &str, room_guids: &[String]) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.set_followed(user, room_guids)
    }
    fn followers(&mut self, room_guid: &str) -> Result<Vec<String>, StoreError> {
        self.check(Op::Read)?;
        self.inner.followers(room_guid)
    }
    fn mark_read(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.mark_read(user, room_guid)
    }
    fn unread_count(&mut self, user: &str, room_guid: &str) -> Result<u64, StoreError> {
        self.check(Op::Read)?;
        self.inner.unread_count(user, room_guid)
    }
    fn get_pref(&mut self, user: &str, label: &str) -> Result<Option<Pref>, StoreError> {
        self.check(Op::Read)?;
        self.inner.get_pref(user, label)
    }
    fn set_pref(&mut self, user: &str, label: &str, content: &str) -> Result<u64, StoreError> {
        self.check(Op::Write)?;
        self.inner.set_pref(user, label, content)
    }
    fn add_invitation(
        &mut self,
        user: &str,
        room_guid: &str,
        inviter: &str,
        ts_ms: i64,
    ) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.add_invitation(user, room_guid, inviter, ts_ms)
    }
    fn invitations(&mut self, user: &str) -> Result<Vec<Invitation>, StoreError> {
        self.check(Op::Read)?;
        self.inner.invitations(user)
    }
    fn mark_invitation_seen(&mut self, user: &str, room_guid: &str) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.mark_invitation_seen(user, room_guid)
    }
    fn put_file(&mut self, file: &super::FileRecord) -> Result<(), StoreError> {
        self.check(Op::Write)?;
        self.inner.put_file(file)
    }
    fn get_file(
        &mut self,
        room_guid: &str,
        name: &str,
    ) -> Result<Option<super::FileRecord>, StoreError> {
        self.check(Op::Read)?;
        self.inner.get_file(room_guid, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn msg(text: &str) -> NewMessage {
        NewMessage {
            room_guid: "g".into(),
            author: "sip:a@contoso.com".into(),
            ts_ms: 1,
            text: text.into(),
        }
    }

    fn store(faults: &Faults) -> FaultyStore {
        let mut inner = SqliteStore::in_memory().expect("in-memory store");
        inner
            .upsert_room(&RoomRecord {
                guid: "g".into(),
                name: "R".into(),
                description: String::new(),
                topic: String::new(),
                privacy: "open".into(),
                members: vec![],
                managers: vec![],
                presenters: vec![],
                category: String::new(),
                room_type: "normal".into(),
                invitations: "inherit".into(),
                disabled: false,
            })
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
