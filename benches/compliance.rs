//! Compliance pipeline throughput (issue 7): events per second through
//! outbox (store table, written in one transaction) -> compliance database (mgccomp,
//! its own SQLite file) -> XML adapter (atomic files: temp, fsync, rename, fsync dir).
//! Real files in a temp directory, so fsyncs are included.
//! Run: `cargo bench --bench compliance`. Figures go to BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pchat_server::compliance::{ComplianceDb, EventKind, NewEvent, Worker};
use pchat_server::config::{AdapterKind, ComplianceConfig};
use pchat_server::store::{SqliteStore, Store};
use std::hint::black_box;

/// Events per measured run, and batch sizes of the worker.
const EVENTS: usize = 2_000;
const BATCHES: [u32; 2] = [100, 1_000];

struct Setup {
    _dir: tempfile::TempDir,
    worker: Worker,
}

fn setup(batch_size: u32, adapter: AdapterKind) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("pchat.db");
    let cfg = ComplianceConfig {
        enabled: true,
        path: dir.path().join("mgccomp.db"),
        output_dir: dir.path().join("out"),
        batch_size,
        adapter,
        ..ComplianceConfig::default()
    };
    let mut store = SqliteStore::open(&store_path).expect("store");
    store.begin().expect("begin");
    for i in 0..EVENTS {
        store
            .record_event(&NewEvent {
                kind: if i % 10 == 0 {
                    EventKind::Join
                } else {
                    EventKind::Chat
                },
                room_uri: format!(
                    "ma-chan://contoso.com/6f0a5c44-31d2-4b8e-9a51-3c7d2f0b9e1{}",
                    i % 4
                ),
                room_name: format!("Room {}", i % 4),
                user: format!("sip:user{}@contoso.com", i % 150),
                ts_ms: 1_767_225_600_000 + i as i64,
                content: format!("message number {i} with some <markup> & text"),
            })
            .expect("record");
    }
    store.commit().expect("commit");
    let worker = Worker::new(
        Box::new(SqliteStore::open(&store_path).expect("store")),
        ComplianceDb::open(&cfg.path).expect("mgccomp"),
        pchat_server::compliance::worker::adapter_for(&cfg),
        &cfg,
        None,
    );
    Setup { _dir: dir, worker }
}

fn bench_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("compliance_pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS as u64));
    for batch in BATCHES {
        for (name, kind) in [("xml", AdapterKind::Xml), ("jsonl", AdapterKind::Jsonl)] {
            g.bench_function(format!("{name}_batch_{batch}"), |b| {
                b.iter_batched(
                    || setup(batch, kind),
                    |mut s| {
                        let report = s.worker.run_once().expect("run");
                        assert_eq!(report.exported, EVENTS, "every event exported once");
                        black_box(report)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
