//! `pchat-server compliance verify`: compares the store, the compliance database and
//! the adapter output, and reports missing or duplicated events.
//!
//! - Every event id `1..=high_water` (the store's outbox sequence) must be found in
//!   the outbox, in mgccomp, or in the output; none found = **missing**.
//! - An id in more than one output record = **duplicated** (an id both in output and in
//!   a pending batch is in flight, not duplicated: the next run rewrites the same file).
//! - An output id above `high_water` = **unknown** (output of another store?).
//! - Every chat message in the store must have a CHAT event with the same room, author,
//!   time and text, and every CHAT event a message (as multisets): the action/event
//!   pairing of the transactional outbox.
//! - Per user and room, JOIN and PART events alternate: a JOIN while the user's
//!   previous JOIN in that room has no PART yet is a **session left open** (the server
//!   that recorded it crashed and nobody closed the session - core start-up does).

use super::adapter::{read_output, Exported, Format};
use super::{ComplianceDb, Event, EventKind};
use crate::store::Store;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// What `verify` found. [`VerifyReport::clean`] = nothing missing, duplicated or odd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Highest event id the store ever assigned.
    pub high_water: i64,
    /// Distinct event ids found in adapter output.
    pub exported: usize,
    /// Events still in the store's outbox.
    pub in_outbox: usize,
    /// Events held in the compliance database (not yet confirmed by the adapter).
    pub in_compliance_db: usize,
    /// Event ids found nowhere.
    pub missing: Vec<i64>,
    /// Event ids found in more than one output record, with the files.
    pub duplicated: Vec<(i64, Vec<String>)>,
    /// Output event ids above the high-water mark.
    pub unknown: Vec<i64>,
    /// Store message ids without a matching CHAT event.
    pub messages_without_event: Vec<i64>,
    /// CHAT event ids without a matching store message.
    pub events_without_message: Vec<i64>,
    /// JOIN event ids never followed by a PART before the same user's next JOIN in
    /// the same room.
    pub sessions_left_open: Vec<i64>,
}

impl VerifyReport {
    /// Nothing missing, duplicated, unknown or unpaired.
    pub fn clean(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unknown.is_empty()
            && self.messages_without_event.is_empty()
            && self.events_without_message.is_empty()
            && self.sessions_left_open.is_empty()
    }

    /// A human-readable report (first 20 ids of each problem).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "events: {} assigned, {} in adapter output, {} in the outbox, {} in the compliance database",
            self.high_water, self.exported, self.in_outbox, self.in_compliance_db
        );
        let _ = writeln!(s, "missing: {}", self.missing.len());
        let _ = writeln!(s, "duplicated: {}", self.duplicated.len());
        for p in self.problems() {
            let _ = writeln!(s, "{p}");
        }
        let _ = writeln!(s, "{}", if self.clean() { "OK" } else { "FAILED" });
        s
    }

    /// One line per problem found, empty when [`VerifyReport::clean`]: missing ids,
    /// each duplicated id with its files, unknown ids, unpaired chat messages and CHAT
    /// events, sessions left open (at most 20 ids per line, 20 duplicates).
    pub fn problems(&self) -> Vec<String> {
        let list = |ids: &[i64]| {
            let mut v: Vec<String> = ids.iter().take(20).map(i64::to_string).collect();
            if ids.len() > 20 {
                v.push(format!("... ({} more)", ids.len() - 20));
            }
            v.join(", ")
        };
        let mut out = Vec::new();
        let mut some = |ids: &[i64], what: &str| {
            if !ids.is_empty() {
                out.push(format!("{what}: {} (ids {})", ids.len(), list(ids)));
            }
        };
        some(
            &self.missing,
            "events missing (in no outbox, compliance database or output)",
        );
        some(&self.unknown, "unknown event ids in output");
        some(
            &self.messages_without_event,
            "chat messages without a CHAT event",
        );
        some(
            &self.events_without_message,
            "CHAT events without a chat message",
        );
        some(
            &self.sessions_left_open,
            "sessions left open - JOIN events without PART before the user's next JOIN in the \
             room (a crashed server's sessions were not cleaned up)",
        );
        for (id, files) in self.duplicated.iter().take(20) {
            out.push(format!(
                "event {id} exported more than once: {}",
                files.join(", ")
            ));
        }
        out
    }
}

type ChatKey = (String, String, i64, String);

fn chat_key(e: &Event) -> ChatKey {
    let guid = crate::ids::split_room_uri(&e.room_uri).map_or("", |(_, g)| g);
    (guid.to_string(), e.user.clone(), e.ts_ms, e.content.clone())
}

/// Verifies `store` + `db` (if present) against the output in `output_dir` (files of
/// the XML and JSON Lines formats). Errors: a database or output file could not be read.
pub fn verify(
    store: &mut dyn Store,
    db: Option<&mut ComplianceDb>,
    output_dir: &Path,
) -> Result<VerifyReport, String> {
    let formats: [&dyn Format; 2] = [&super::xml::Xml, &super::jsonl::Jsonl];
    let output = read_output(output_dir, &formats)?;
    let high_water = store.event_high_water().map_err(|e| e.to_string())?;
    let outbox = store.outbox_peek(u32::MAX).map_err(|e| e.to_string())?;
    let held: Vec<Event> = match db {
        Some(db) => db
            .events()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(e, _)| e)
            .collect(),
        None => Vec::new(),
    };
    compare(store, high_water, &outbox, &held, &output)
}

/// The comparison behind [`verify`], for callers that already hold the pieces (the
/// simulator's oracle). Errors: the store's messages could not be read.
pub fn compare(
    store: &mut dyn Store,
    high_water: i64,
    outbox: &[Event],
    held: &[Event],
    output: &[Exported],
) -> Result<VerifyReport, String> {
    let mut files_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for x in output {
        files_of.entry(x.event.id).or_default().push(x.file.clone());
    }
    let mut known: BTreeMap<i64, &Event> = BTreeMap::new();
    for e in outbox
        .iter()
        .chain(held)
        .chain(output.iter().map(|x| &x.event))
    {
        known.entry(e.id).or_insert(e);
    }
    let mut report = VerifyReport {
        high_water,
        exported: files_of.len(),
        in_outbox: outbox.len(),
        in_compliance_db: held.len(),
        ..VerifyReport::default()
    };
    report.missing = (1..=high_water)
        .filter(|id| !known.contains_key(id))
        .collect();
    report.duplicated = files_of
        .iter()
        .filter(|(_, f)| f.len() > 1)
        .map(|(id, f)| (*id, f.clone()))
        .collect();
    report.unknown = files_of
        .keys()
        .copied()
        .filter(|id| *id > high_water || *id < 1)
        .collect();
    // Pair chat messages with CHAT events (multisets keyed by room, author, time, text).
    let mut chats: BTreeMap<ChatKey, Vec<i64>> = BTreeMap::new();
    for e in known.values().filter(|e| e.kind == EventKind::Chat) {
        chats.entry(chat_key(e)).or_default().push(e.id);
    }
    let mut after = 0;
    loop {
        let page = store
            .messages_after(after, 10_000)
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for m in page {
            let key = (m.room_guid, m.author, m.ts_ms, m.text);
            match chats.get_mut(&key).and_then(|ids| ids.pop()) {
                Some(_) => {}
                None => report.messages_without_event.push(m.id),
            }
        }
    }
    report.events_without_message = chats.into_values().flatten().collect();
    report.events_without_message.sort_unstable();
    report.sessions_left_open = sessions_left_open(known.values().copied());
    Ok(report)
}

/// JOIN ids (ascending) not closed by a PART before the next JOIN of the same user in
/// the same room; `events` in id order.
fn sessions_left_open<'a>(events: impl Iterator<Item = &'a Event>) -> Vec<i64> {
    let mut open: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut left = Vec::new();
    for e in events {
        let key = (e.user.as_str(), e.room_uri.as_str());
        match e.kind {
            EventKind::Join => {
                if let Some(earlier) = open.insert(key, e.id) {
                    left.push(earlier);
                }
            }
            EventKind::Part => {
                open.remove(&key);
            }
            _ => {}
        }
    }
    left.sort_unstable();
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::adapter::{Adapter, Batch, FileAdapter};
    use crate::compliance::{NewEvent, Worker};
    use crate::config::ComplianceConfig;
    use crate::store::{NewMessage, RoomRecord, SqliteStore};

    fn chat(text: &str) -> NewEvent {
        NewEvent {
            kind: EventKind::Chat,
            room_uri: "ma-chan://contoso.com/g1".into(),
            room_name: "A".into(),
            user: "sip:a@contoso.com".into(),
            ts_ms: 5,
            content: text.into(),
        }
    }

    #[test]
    fn clean_after_a_run_then_reports_duplicates_missing_and_unpaired() {
        let dir = tempfile::tempdir().unwrap();
        let store_path = dir.path().join("pchat.db");
        let cfg = ComplianceConfig {
            enabled: true,
            path: dir.path().join("mgccomp.db"),
            output_dir: dir.path().join("out"),
            batch_size: 2,
            ..ComplianceConfig::default()
        };
        let mut store = SqliteStore::open(&store_path).unwrap();
        store.upsert_room(&RoomRecord::open("g1", "A")).unwrap();
        for t in ["x", "y", "z"] {
            store.begin().unwrap();
            store
                .append_message(&NewMessage {
                    client_msgid: None,
                    room_guid: "g1".into(),
                    author: "sip:a@contoso.com".into(),
                    ts_ms: 5,
                    text: t.into(),
                })
                .unwrap();
            store.record_event(&chat(t)).unwrap();
            store.commit().unwrap();
        }
        let mut w = Worker::open(&cfg, &store_path, None).unwrap();
        let r = w.run_once().unwrap();
        assert_eq!((r.moved, r.batches, r.exported), (3, 2, 3));
        drop(w);
        let mut db = ComplianceDb::open(&cfg.path).unwrap();
        let report = verify(&mut store, Some(&mut db), &cfg.output_dir).unwrap();
        assert!(report.clean(), "{}", report.render());
        assert_eq!((report.high_water, report.exported), (3, 3));

        // A message without its event, and the first batch written twice under
        // another name: both reported.
        store
            .append_message(&NewMessage {
                client_msgid: None,
                room_guid: "g1".into(),
                author: "sip:a@contoso.com".into(),
                ts_ms: 6,
                text: "no event".into(),
            })
            .unwrap();
        let first = std::fs::read(cfg.output_dir.join("pchat-compliance-00000001.xml")).unwrap();
        std::fs::write(cfg.output_dir.join("pchat-compliance-00000099.xml"), first).unwrap();
        let report = verify(&mut store, Some(&mut db), &cfg.output_dir).unwrap();
        assert!(!report.clean());
        assert_eq!(report.duplicated.len(), 2, "{}", report.render());
        assert_eq!(report.messages_without_event.len(), 1);
        assert!(report.render().contains("duplicated: 2"));

        // An event id assigned but found nowhere: missing.
        std::fs::remove_file(cfg.output_dir.join("pchat-compliance-00000002.xml")).unwrap();
        let report = verify(&mut store, Some(&mut db), &cfg.output_dir).unwrap();
        assert_eq!(report.missing, vec![3]);
    }

    #[test]
    fn redelivery_writes_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = FileAdapter::new(
            dir.path().to_path_buf(),
            Box::new(crate::compliance::xml::Xml),
            true,
        );
        let batch = Batch {
            id: 7,
            events: vec![crate::compliance::Event::new(1, chat("x"))],
        };
        a.deliver(&batch, None).unwrap();
        let name = dir.path().join("pchat-compliance-00000007-g1.xml");
        let once = std::fs::read(&name).unwrap();
        a.deliver(&batch, None).unwrap();
        assert_eq!(std::fs::read(&name).unwrap(), once);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_join_without_part_before_the_next_join_is_a_session_left_open() {
        let ev = |id, kind, user: &str, room: &str| {
            Event::new(
                id,
                NewEvent {
                    kind,
                    room_uri: room.into(),
                    room_name: String::new(),
                    user: user.into(),
                    ts_ms: id,
                    content: String::new(),
                },
            )
        };
        let (a, b, r1, r2) = ("sip:a@x", "sip:b@x", "ma-chan://x/1", "ma-chan://x/2");
        let events = [
            ev(1, EventKind::Join, a, r1),
            ev(2, EventKind::Join, b, r1),
            ev(3, EventKind::Join, a, r2),
            ev(4, EventKind::Part, b, r1),
            ev(5, EventKind::Join, b, r1), // b parted first: fine
            ev(6, EventKind::Chat, a, r1),
            ev(7, EventKind::Join, a, r1), // a never parted r1: 1 left open
            ev(8, EventKind::Part, a, r1),
            ev(9, EventKind::Join, a, r2), // 3 left open
        ];
        assert_eq!(sessions_left_open(events.iter()), [1, 3]);
        assert!(sessions_left_open(events[..6].iter()).is_empty());
    }
}
