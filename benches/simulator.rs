//! Simulator speed: simulated seconds per wall-clock second for a 100-client chat
//! scenario run by `pchat_sim::runner::run_sim` (turmoil, the real server code on a
//! simulated host, one simulated host per client, 1 ms ticks).
//!
//! The scenario: 100 clients sign in (the 7-step sign-in, `bjoin` + `bccontext` of
//! Lobby), then 5 rounds in which every client posts once to Lobby (each post relayed
//! to the 99 others), rounds 2 simulated seconds apart - 500 posts, 49,500 relays.
//! Turmoil steps every host and scans every link each 1 ms tick, so the speed is per
//! simulated millisecond, nearly independent of the scenario's length (BENCHMARKS.md).
//! Throughput is reported in simulated **milliseconds** per wall second, so criterion's
//! `Kelem/s` reads as "x real time" (1 Kelem/s = 1 simulated s per wall s).
//! Run: `cargo bench --bench simulator`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pchat_sim::runner::run_sim;
use pchat_sim::scenario::Scenario;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

const CLIENTS: usize = 100;
const ROUNDS: usize = 5;
const ROUND_GAP_MS: u64 = 2_000;

fn scenario() -> Scenario {
    let mut s = String::from(
        "name = \"bench-100-clients\"\ndescription = \"100 clients chatting in Lobby\"\n",
    );
    for i in 0..CLIENTS {
        let _ = write!(
            s,
            "[[client]]\nname = \"u{i}\"\nuri = \"sip:u{i}@contoso.com\"\n"
        );
    }
    for i in 0..CLIENTS {
        let _ = write!(
            s,
            "[[step]]\nclient = \"u{i}\"\naction = \"sign-in\"\nrooms = [\"Lobby\"]\n"
        );
    }
    for r in 0..ROUNDS {
        let _ = write!(s, "[[step]]\naction = \"wait\"\nms = {ROUND_GAP_MS}\n");
        for i in 0..CLIENTS {
            let _ = write!(
                s,
                "[[step]]\nclient = \"u{i}\"\naction = \"post\"\nroom = \"Lobby\"\ntext = \"round {r} from u{i}\"\n"
            );
        }
    }
    Scenario::parse(&s, Path::new("bench-100-clients.toml")).expect("bench scenario is valid")
}

fn bench_simulator(c: &mut Criterion) {
    let sc = scenario();
    let started = Instant::now();
    let first = run_sim(&sc, 1);
    let wall = started.elapsed();
    assert!(first.passed(), "bench scenario passes: {:?}", first.failure);
    let sim_ms = first.elapsed.as_millis() as u64;
    eprintln!(
        "simulator: {CLIENTS} clients, {} steps, {} SIP messages, {:.1} simulated s in {:.2} wall s = {:.2}x real time",
        first.steps_total,
        first.transcript.message_count(),
        first.elapsed.as_secs_f64(),
        wall.as_secs_f64(),
        first.elapsed.as_secs_f64() / wall.as_secs_f64()
    );
    let mut g = c.benchmark_group("simulator");
    g.sample_size(10);
    g.throughput(Throughput::Elements(sim_ms));
    g.bench_function("chat_100_clients", |b| {
        b.iter(|| {
            let r = run_sim(&sc, 1);
            assert!(r.passed());
            r.elapsed
        })
    });
    g.finish();
}

criterion_group!(benches, bench_simulator);
criterion_main!(benches);
