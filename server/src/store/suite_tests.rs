//! The store's test suite, run against both backends: SQLite (in memory) always, and
//! PostgreSQL when its binaries are present (a throwaway cluster, `pg_harness`; one
//! database per case). Under `CI=true` a missing PostgreSQL fails the test.

use super::pg_harness::TempPg;
use super::*;
use crate::compliance::{EventKind, NewEvent};

type Case = (&'static str, fn(&mut dyn Store));

const CASES: &[Case] = &[
    ("rooms_upsert_and_reload", rooms_upsert_and_reload),
    ("history_and_rollback", history_and_rollback),
    ("history_queries", history_queries),
    (
        "followed_markers_prefs_invitations",
        followed_markers_prefs_invitations,
    ),
    ("savepoints_and_events", savepoints_and_events),
    (
        "failed_write_keeps_the_transaction",
        failed_write_keeps_the_transaction,
    ),
    ("ledger_files_msgids", ledger_files_msgids),
    ("pool_log_in_commit_order", pool_log_in_commit_order),
    ("leases_claimed_once", leases_claimed_once),
    (
        "role_lease_one_holder_at_a_time",
        role_lease_one_holder_at_a_time,
    ),
];

/// A room record for tests of this module's stores (also `bell`'s).
pub(super) fn room(guid: &str, name: &str) -> RoomRecord {
    RoomRecord {
        guid: guid.into(),
        attrs: RoomAttrs {
            name: name.into(),
            description: "d".into(),
            topic: "t".into(),
            privacy: crate::config::Privacy::Open,
            category: "Default".into(),
            room_type: crate::config::RoomType::Auditorium,
            invitations: crate::config::Invitations::On,
            disabled: false,
        },
        members: vec!["sip:a@x".into(), "sip:b@x".into()],
        managers: vec!["sip:a@x".into()],
        presenters: vec!["sip:p@x".into()],
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

fn texts(v: Vec<StoredMessage>) -> Vec<String> {
    v.into_iter().map(|m| m.text).collect()
}

fn rooms_upsert_and_reload(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "Zeta")).unwrap();
    s.upsert_room(&room("g2", "alpha")).unwrap();
    let mut r = room("g1", "Zeta");
    r.attrs.topic = "new".into();
    r.members = vec!["sip:c@x".into()];
    r.attrs.disabled = true;
    s.upsert_room(&r).unwrap();
    let rooms = s.load_rooms().unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0].attrs.name, "alpha");
    assert_eq!(rooms[1], r);
    assert!(
        s.upsert_room(&room("g3", "ZETA")).is_err(),
        "names unique, any case"
    );
}

fn history_and_rollback(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "A")).unwrap();
    for i in 0..5 {
        s.append_message(&msg("g1", &format!("m{i}"))).unwrap();
    }
    assert_eq!(texts(s.last_messages("g1", 3).unwrap()), ["m2", "m3", "m4"]);
    s.begin().unwrap();
    s.append_message(&msg("g1", "lost")).unwrap();
    s.rollback();
    assert_eq!(s.message_count("g1").unwrap(), 5);
    s.begin().unwrap();
    s.append_message(&msg("g1", "kept")).unwrap();
    s.commit().unwrap();
    assert_eq!(s.message_count("g1").unwrap(), 6);
    assert!(s.append_message(&msg("nope", "x")).is_err(), "no such room");
    let all = s.messages_after(0, 100).unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
}

fn history_queries(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "A")).unwrap();
    let posts = [
        ("sip:a@x", "Alpha one"),
        ("sip:b@x", "beta"),
        ("sip:a@x", "ALPHA two"),
        ("sip:b@x", "alpha 100%"),
    ];
    for (i, (author, text)) in posts.iter().enumerate() {
        let mut m = msg("g1", text);
        m.author = author.to_string();
        m.ts_ms = 1000 * (i as i64 + 1);
        s.append_message(&m).unwrap();
    }
    let ids: Vec<i64> = s
        .last_messages("g1", 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    let before = HistoryQuery::Before(ids[2]);
    assert_eq!(
        texts(s.history("g1", &before, 10).unwrap()),
        ["Alpha one", "beta"]
    );
    assert_eq!(texts(s.history("g1", &before, 1).unwrap()), ["beta"]);
    let since = HistoryQuery::Since(2000);
    assert_eq!(
        texts(s.history("g1", &since, 2).unwrap()),
        ["beta", "ALPHA two"]
    );
    let search = |keyword: &str, author: Option<&str>, from_ms, to_ms| HistoryQuery::Search {
        keyword: keyword.into(),
        author: author.map(str::to_string),
        from_ms,
        to_ms,
    };
    let q = search("alpha", None, None, None);
    assert_eq!(
        texts(s.history("g1", &q, 10).unwrap()),
        ["Alpha one", "ALPHA two", "alpha 100%"]
    );
    let q = search("alpha", Some("SIP:A@x"), None, None);
    assert_eq!(
        texts(s.history("g1", &q, 10).unwrap()),
        ["Alpha one", "ALPHA two"]
    );
    let q = search("", None, Some(2000), Some(3000));
    assert_eq!(
        texts(s.history("g1", &q, 10).unwrap()),
        ["beta", "ALPHA two"]
    );
    let q = search("%", None, None, None);
    assert_eq!(
        texts(s.history("g1", &q, 10).unwrap()),
        ["alpha 100%"],
        "no wildcards"
    );
}

fn followed_markers_prefs_invitations(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "A")).unwrap();
    s.upsert_room(&room("g2", "B")).unwrap();
    s.follow("u", "g2").unwrap();
    s.follow("u", "g1").unwrap();
    s.follow("u", "g2").unwrap();
    assert_eq!(s.followed("u").unwrap(), ["g2", "g1"]);
    s.append_message(&msg("g1", "x")).unwrap();
    assert_eq!(s.unread_count("u", "g1").unwrap(), Some(1));
    s.mark_read("u", "g1").unwrap();
    assert_eq!(s.unread_count("u", "g1").unwrap(), Some(0), "all read");
    s.append_message(&msg("g1", "y")).unwrap();
    assert_eq!(s.unread_count("u", "g1").unwrap(), Some(1));
    assert_eq!(s.unread_count("other", "g1").unwrap(), None, "not followed");
    assert_eq!(s.followers("g1").unwrap(), ["u"]);
    s.set_followed("u", &["g1".into(), "g2".into(), "g1".into()])
        .unwrap();
    assert_eq!(s.followed("u").unwrap(), ["g1", "g2"]);
    assert_eq!(s.unread_count("u", "g1").unwrap(), Some(1), "marker kept");
    s.set_followed("u", &["g2".into()]).unwrap();
    assert_eq!(s.followed("u").unwrap(), ["g2"]);
    s.unfollow("u", "g2").unwrap();
    assert!(s.followed("u").unwrap().is_empty());

    assert_eq!(s.get_pref("u", "l").unwrap(), None);
    assert_eq!(s.set_pref("u", "l", "AA==").unwrap(), 1);
    assert_eq!(s.set_pref("u", "l", "AQ==").unwrap(), 2);
    let want = Pref {
        seqid: 2,
        content: "AQ==".into(),
    };
    assert_eq!(s.get_pref("u", "l").unwrap(), Some(want));

    s.add_invitation("u", "g1", "sip:a@x", 5).unwrap();
    s.add_invitation("u", "g1", "sip:a@x", 6).unwrap();
    s.add_invitation("u", "g2", "sip:a@x", 7).unwrap();
    let inv: Vec<String> = s
        .invitations("u")
        .unwrap()
        .into_iter()
        .map(|i| i.room_guid)
        .collect();
    assert_eq!(inv, ["g1", "g2"]);
    s.mark_invitation_seen("u", "g1").unwrap();
    assert_eq!(s.invitations("u").unwrap().len(), 1);
}

fn event(user: &str) -> NewEvent {
    NewEvent {
        kind: EventKind::Chat,
        room_uri: "ma-chan://x/g1".into(),
        room_name: "A".into(),
        user: user.into(),
        ts_ms: 7,
        content: "hi".into(),
    }
}

fn savepoints_and_events(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "A")).unwrap();
    assert_eq!(s.event_high_water().unwrap(), 0);
    s.begin().unwrap();
    s.savepoint().unwrap();
    s.append_message(&msg("g1", "undone")).unwrap();
    s.record_event(&event("sip:a@x")).unwrap();
    s.release_savepoint(false).unwrap();
    s.savepoint().unwrap();
    s.append_message(&msg("g1", "kept")).unwrap();
    assert_eq!(
        s.record_event(&event("sip:b@x")).unwrap(),
        1,
        "ids gap-free"
    );
    s.release_savepoint(true).unwrap();
    s.commit().unwrap();
    assert_eq!(texts(s.last_messages("g1", 10).unwrap()), ["kept"]);
    s.begin().unwrap();
    s.record_event(&event("sip:lost@x")).unwrap();
    s.rollback();
    assert_eq!(
        s.event_high_water().unwrap(),
        1,
        "a rolled back id is reused"
    );
    assert_eq!(s.record_event(&event("sip:c@x")).unwrap(), 2);
    let ev = s.outbox_peek(10).unwrap();
    assert_eq!(
        ev.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(),
        ["sip:b@x", "sip:c@x"]
    );
    s.outbox_delete(&[1, 99]).unwrap();
    assert_eq!(s.outbox_peek(10).unwrap().len(), 1);
    assert_eq!(s.event_high_water().unwrap(), 2);
    // A savepoint outside a transaction is a transaction of its own.
    s.savepoint().unwrap();
    s.append_message(&msg("g1", "alone")).unwrap();
    s.release_savepoint(true).unwrap();
    assert_eq!(s.message_count("g1").unwrap(), 2);
}

fn failed_write_keeps_the_transaction(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "A")).unwrap();
    s.begin().unwrap();
    s.append_message(&msg("g1", "before")).unwrap();
    assert!(s.append_message(&msg("nope", "x")).is_err());
    assert!(s.upsert_room(&room("g9", "a")).is_err(), "duplicate name");
    s.append_message(&msg("g1", "after")).unwrap();
    s.commit().unwrap();
    assert_eq!(
        texts(s.last_messages("g1", 10).unwrap()),
        ["before", "after"]
    );
}

fn ledger_files_msgids(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "A")).unwrap();
    let sess = |u: &str| OpenSession {
        user: u.into(),
        room_uri: "ma-chan://x/g1".into(),
        room_name: "A".into(),
    };
    s.open_session("m1", &sess("sip:b@x")).unwrap();
    s.open_session("m1", &sess("sip:a@x")).unwrap();
    s.open_session("m1", &sess("sip:a@x")).unwrap();
    s.open_session("m2", &sess("sip:c@x")).unwrap();
    s.open_session("m2", &sess("sip:a@x")).unwrap();
    assert_eq!(
        s.room_sessions("ma-chan://x/g1").unwrap(),
        ["sip:a@x", "sip:b@x", "sip:c@x"]
    );
    s.close_session("m2", "sip:a@x", "ma-chan://x/g1").unwrap();
    assert!(s.room_sessions("ma-chan://x/other").unwrap().is_empty());
    assert_eq!(
        s.open_sessions("m1").unwrap(),
        [sess("sip:a@x"), sess("sip:b@x")]
    );
    s.close_session("m1", "sip:a@x", "ma-chan://x/g1").unwrap();
    s.close_session("m1", "sip:zz@x", "ma-chan://x/g1").unwrap();
    assert_eq!(s.open_sessions("m1").unwrap(), [sess("sip:b@x")]);

    let f = FileRecord {
        room_guid: "g1".into(),
        name: "a.txt".into(),
        sha256: "00".into(),
        size: 3,
        uploader: "sip:a@x".into(),
        ts_ms: 9,
    };
    s.put_file(&f).unwrap();
    let f2 = FileRecord {
        size: 4,
        ..f.clone()
    };
    s.put_file(&f2).unwrap();
    assert_eq!(s.get_file("g1", "a.txt").unwrap(), Some(f2));
    assert_eq!(s.get_file("g1", "b.txt").unwrap(), None);

    let mut m = msg("g1", "once");
    m.client_msgid = Some("c1".into());
    let id = s.append_message(&m).unwrap();
    assert!(
        s.append_message(&m).is_err(),
        "same author and msgid refused"
    );
    assert_eq!(s.find_client_message("sip:a@x", "c1").unwrap(), Some(id));
    assert_eq!(s.find_client_message("sip:b@x", "c1").unwrap(), None);
}

fn log(room: &str, origin: &str, kind: LogKind, msg_id: Option<i64>) -> NewLogEntry {
    NewLogEntry {
        head: LogHead {
            room_guid: room.into(),
            origin: origin.into(),
            dialog: 3,
            kind,
            user: "sip:a@x".into(),
            ts_ms: 5,
        },
        msg_id,
    }
}

fn pool_log_in_commit_order(s: &mut dyn Store) {
    s.upsert_room(&room("g1", "A")).unwrap();
    s.upsert_room(&room("g2", "B")).unwrap();
    assert_eq!(s.log_heads().unwrap(), [("g1".into(), 0), ("g2".into(), 0)]);
    s.begin().unwrap();
    let id = s.append_message(&msg("g1", "hello")).unwrap();
    assert_eq!(
        s.log_append(&log("g1", "m1", LogKind::Chat, Some(id)))
            .unwrap(),
        1
    );
    assert_eq!(
        s.log_append(&log("g1", "m1", LogKind::Join, None)).unwrap(),
        2
    );
    s.commit().unwrap();
    s.begin().unwrap();
    s.log_append(&log("g1", "m1", LogKind::Part, None)).unwrap();
    s.rollback();
    assert_eq!(
        s.log_append(&log("g2", "m2", LogKind::BJoin, None))
            .unwrap(),
        1
    );
    assert!(s
        .log_append(&log("nope", "m1", LogKind::Part, None))
        .is_err());
    assert_eq!(s.log_heads().unwrap(), [("g1".into(), 2), ("g2".into(), 1)]);
    let got = s.log_after("g1", 0, 10).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].seq, got[0].head.kind, got[0].text.as_str()),
        (1, LogKind::Chat, "hello")
    );
    assert_eq!(
        (got[1].seq, got[1].head.kind, got[1].text.as_str()),
        (2, LogKind::Join, "")
    );
    assert_eq!((got[1].head.origin.as_str(), got[1].head.dialog), ("m1", 3));
    assert_eq!(s.log_after("g1", 1, 10).unwrap().len(), 1);
    assert_eq!(s.log_after("g1", 0, 1).unwrap().len(), 1);
}

fn leases_claimed_once(s: &mut dyn Store) {
    s.lease_renew("m1", 1000).unwrap();
    s.lease_renew("m2", 500).unwrap();
    s.lease_renew("m2", 2000).unwrap();
    assert!(s.lease_expired(1000).unwrap().is_empty());
    assert_eq!(s.lease_expired(1500).unwrap(), ["m1"]);
    assert!(!s.lease_claim("m2", 1500).unwrap(), "m2 is alive");
    assert!(s.lease_claim("m1", 1500).unwrap());
    assert!(!s.lease_claim("m1", 1500).unwrap(), "claimed once");
    assert_eq!(s.lease_expired(3000).unwrap(), ["m2"]);
}

#[test]
fn suite_on_sqlite() {
    for (name, case) in CASES {
        eprintln!("sqlite: {name}");
        let mut s = SqliteStore::in_memory().unwrap();
        case(&mut s);
    }
}

/// SQLite only: a file store keeps its data across a reopen and migrates once.
#[test]
fn sqlite_file_store_survives_reopen_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/pchat.db");
    {
        let mut s = SqliteStore::open(&path).unwrap();
        s.upsert_room(&room("g1", "A")).unwrap();
        s.append_message(&msg("g1", "persisted")).unwrap();
    }
    let mut s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 8);
    assert_eq!(s.last_messages("g1", 10).unwrap()[0].text, "persisted");
}

#[test]
fn suite_on_postgres() {
    let Some(pg) = TempPg::start_or_skip("store suite_on_postgres") else {
        return;
    };
    for (name, case) in CASES {
        eprintln!("postgres: {name}");
        let url = pg.create_db(name).unwrap();
        let mut s = PgStore::connect(&url).unwrap();
        case(&mut s);
        drop(s);
        let mut again = PgStore::connect(&url).unwrap();
        assert_eq!(again.schema_version().unwrap(), 8, "migrated once");
    }
}

/// One step of [`role_lease_one_holder_at_a_time`]: (holder that releases first, role,
/// who asks, (now, until) in ms, taken?, why).
type LeaseStep = (
    Option<&'static str>,
    &'static str,
    &'static str,
    (i64, i64),
    bool,
    &'static str,
);

/// The compliance worker's lease (`COMPLIANCE_ROLE`): one holder until its lease
/// ends or it releases it; the holder renews it.
fn role_lease_one_holder_at_a_time(s: &mut dyn Store) {
    let role = COMPLIANCE_ROLE;
    let steps: &[LeaseStep] = &[
        (None, role, "m1", (1_000, 2_000), true, "free: m1 takes it"),
        (None, role, "m2", (1_500, 2_500), false, "m1's still runs"),
        (None, role, "m1", (1_900, 3_000), true, "m1 renews"),
        (None, role, "m2", (2_500, 3_500), false, "renewed to 3000"),
        (
            None,
            role,
            "m2",
            (3_001, 4_000),
            true,
            "ended: m2 takes over",
        ),
        (None, role, "m1", (3_002, 4_002), false, "now m2's"),
        (
            Some("m1"),
            role,
            "m3",
            (3_003, 4_003),
            false,
            "m1 cannot release m2's",
        ),
        (
            Some("m2"),
            role,
            "m3",
            (3_004, 4_004),
            true,
            "released: free at once",
        ),
        (None, "other", "m1", (3_004, 4_004), true, "roles are apart"),
    ];
    for (released, r, who, at, taken, why) in steps {
        if let Some(h) = released {
            s.role_release(role, h).unwrap();
        }
        assert_eq!(s.role_lease(r, who, *at).unwrap(), *taken, "{why}");
    }
    s.begin().unwrap();
    assert!(s.role_lease(role, "m3", (3_005, 9_000)).unwrap());
    s.rollback();
    assert!(
        !s.role_lease(role, "m1", (4_000, 6_000)).unwrap(),
        "rolled back: until 4004"
    );
    assert!(s.role_lease(role, "m1", (4_005, 6_000)).unwrap());
}

/// Two connections (two members) to a fresh database `db` of a throw-away PostgreSQL;
/// `None` (skipped, reason printed) without PostgreSQL.
fn two_pg_members(test: &str, db: &str) -> Option<(TempPg, PgStore, PgStore)> {
    let pg = TempPg::start_or_skip(test)?;
    let url = pg.create_db(db).unwrap();
    let a = PgStore::connect(&url).unwrap();
    let b = PgStore::connect(&url).unwrap();
    Some((pg, a, b))
}

#[test]
fn postgres_lease_claimed_by_one_of_two_members() {
    let Some((_pg, mut a, mut b)) =
        two_pg_members("postgres_lease_claimed_by_one_of_two_members", "claims")
    else {
        return;
    };
    a.lease_renew("dead", 10).unwrap();
    a.begin().unwrap();
    b.begin().unwrap();
    assert!(a.lease_claim("dead", 100).unwrap());
    // b's claim waits for a's row lock; a commits from another thread meanwhile.
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        a.commit().unwrap();
    });
    assert!(!b.lease_claim("dead", 100).unwrap(), "claimed exactly once");
    b.commit().unwrap();
    t.join().unwrap();
    assert!(PgStore::connect("postgresql://pchat@127.0.0.1:1/none").is_err());
}

/// Two members' batches that lock two rooms in opposite orders: without the pool's
/// write lock PostgreSQL finds a deadlock and aborts one write; with it the second
/// batch waits for the first and both commit everything.
#[test]
fn postgres_batches_locking_rooms_in_opposite_orders_both_commit() {
    let Some((_pg, mut a, mut b)) = two_pg_members("postgres_opposite_orders", "orders") else {
        return;
    };
    a.upsert_room(&room("g1", "A")).unwrap();
    a.upsert_room(&room("g2", "B")).unwrap();
    a.begin().unwrap();
    a.log_append(&log("g1", "m1", LogKind::Join, None)).unwrap();
    let t = std::thread::spawn(move || {
        b.begin().unwrap();
        let first = b.log_append(&log("g2", "m2", LogKind::Join, None));
        let second = b.log_append(&log("g1", "m2", LogKind::Join, None));
        (first.is_ok(), second.is_ok(), b.commit().is_ok())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(a.log_append(&log("g2", "m1", LogKind::Join, None)).is_ok());
    a.commit().unwrap();
    assert_eq!(t.join().unwrap(), (true, true, true), "no write aborted");
    assert_eq!(a.log_heads().unwrap(), [("g1".into(), 2), ("g2".into(), 2)]);
}

#[test]
fn postgres_reconnects_and_never_reports_a_lost_transaction_committed() {
    let Some(pg) = TempPg::start_or_skip("postgres_reconnects") else {
        return;
    };
    let url = pg.create_db("reconnect").unwrap();
    let mut s = PgStore::connect(&url).unwrap();
    s.upsert_room(&room("g1", "A")).unwrap();
    s.begin().unwrap();
    s.append_message(&msg("g1", "lost with the connection"))
        .unwrap();
    let admin = url.clone();
    std::thread::spawn(move || {
        let mut c = ::postgres::Client::connect(&admin, ::postgres::NoTls).unwrap();
        c.batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = 'reconnect' AND pid <> pg_backend_pid()",
        )
        .unwrap();
    })
    .join()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        s.commit().is_err(),
        "a transaction lost with its connection"
    );
    // The store connects again and works.
    let mut ok = false;
    for _ in 0..3 {
        if s.append_message(&msg("g1", "after")).is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "the store connected again");
    assert_eq!(texts(s.last_messages("g1", 10).unwrap()), ["after"]);
}
