//! Persistent Chat Store benchmarks on a real file (WAL, `synchronous=FULL`: one fsync
//! per commit, as the server runs):
//! - `store_append`: one group-commit batch = `begin`, B x `append_message`, `commit`,
//!   for B = 1, 16, 256 (throughput in posts);
//! - `sqlite_raw_insert`: the same rows through rusqlite directly (one prepared INSERT,
//!   same schema and pragmas, same batch sizes) - the store's own ceiling, in the same run;
//! - `store_append_msgid`: batch 256 of posts carrying a client message id (grpchat
//!   `msgid`), each looked up first (`find_client_message`) as the server does - the
//!   cost of cross-dialog de-duplication against `store_append/256`;
//! - `store_history`: `last_messages(room, 25)` on a room of 10,000 messages.
//!
//! Run: `cargo bench --bench store`. Figures go to BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pchat_server::store::{NewMessage, RoomAttrs, RoomRecord, SqliteStore, Store};
use rusqlite::{params, Connection};
use std::hint::black_box;

const BATCHES: [usize; 3] = [1, 16, 256];
const GUID: &str = "6f0a5c44-31d2-4b8e-9a51-3c7d2f0b9e11";

fn room() -> RoomRecord {
    RoomRecord {
        managers: vec!["sip:user1@contoso.com".into()],
        attrs: RoomAttrs {
            description: "Design discussions".into(),
            topic: "Q3 layout".into(),
            ..RoomAttrs::open("Design")
        },
        ..RoomRecord::open(GUID, "Design")
    }
}

fn message(i: usize) -> NewMessage {
    NewMessage {
        client_msgid: None,
        room_guid: GUID.into(),
        author: format!("sip:user{}@contoso.com", i % 150),
        ts_ms: 1_767_225_600_000 + i as i64,
        text: format!("message {i}: the Q3 layout review moves to Thursday, see you there"),
    }
}

fn open_store(dir: &tempfile::TempDir) -> SqliteStore {
    let mut s = SqliteStore::open(&dir.path().join("pchat.db")).expect("store opens");
    s.upsert_room(&room()).expect("room");
    s
}

fn bench_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(&dir);
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw = Connection::open(raw_dir.path().join("raw.db")).expect("raw db");
    raw.pragma_update(None, "journal_mode", "WAL").expect("wal");
    raw.pragma_update(None, "synchronous", "FULL")
        .expect("sync");
    raw.execute_batch(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, room_guid TEXT NOT NULL,
         author TEXT NOT NULL, ts_ms INTEGER NOT NULL, text TEXT NOT NULL);
         CREATE INDEX messages_by_room ON messages(room_guid, id);",
    )
    .expect("schema");
    let rows: Vec<NewMessage> = (0..256).map(message).collect();

    let mut g = c.benchmark_group("store_append");
    for b in BATCHES {
        g.throughput(Throughput::Elements(b as u64));
        g.bench_with_input(BenchmarkId::from_parameter(b), &b, |bench, &b| {
            bench.iter(|| {
                store.begin().expect("begin");
                for m in &rows[..b] {
                    black_box(store.append_message(m).expect("append"));
                }
                store.commit().expect("commit");
            })
        });
    }
    g.finish();

    let mut next = 0u64;
    let mut g = c.benchmark_group("store_append_msgid");
    g.throughput(Throughput::Elements(256));
    g.bench_function("256", |bench| {
        bench.iter(|| {
            store.begin().expect("begin");
            for m in &rows {
                next += 1;
                let id = format!("m-{next}");
                let known = store.find_client_message(&m.author, &id).expect("lookup");
                assert!(known.is_none(), "ids are fresh");
                let mut m = m.clone();
                m.client_msgid = Some(id);
                black_box(store.append_message(&m).expect("append"));
            }
            store.commit().expect("commit");
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite_raw_insert");
    for b in BATCHES {
        g.throughput(Throughput::Elements(b as u64));
        g.bench_with_input(BenchmarkId::from_parameter(b), &b, |bench, &b| {
            bench.iter(|| {
                raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
                {
                    let mut st = raw
                        .prepare_cached(
                            "INSERT INTO messages (room_guid, author, ts_ms, text) VALUES (?1, ?2, ?3, ?4)",
                        )
                        .expect("prepare");
                    for m in &rows[..b] {
                        st.execute(params![m.room_guid, m.author, m.ts_ms, m.text])
                            .expect("insert");
                    }
                }
                raw.execute_batch("COMMIT").expect("commit");
            })
        });
    }
    g.finish();
}

fn bench_history(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(&dir);
    store.begin().expect("begin");
    for i in 0..10_000 {
        store.append_message(&message(i)).expect("append");
    }
    store.commit().expect("commit");
    let mut g = c.benchmark_group("store_history");
    g.bench_function("last_25_of_10000", |b| {
        b.iter(|| {
            store
                .last_messages(black_box(GUID), 25)
                .expect("history")
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_append, bench_history);
criterion_main!(benches);
