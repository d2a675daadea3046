//! Simulator speed: simulated seconds per wall-clock second of `pchat_sim::runner`
//! (turmoil, the real server code on a simulated host; clients share simulated hosts
//! beyond 16 clients, `sim_hosts`; steps of 1 ms while messages are in flight and up to
//! 50 ms while idle, `sim_clock`).
//!
//! - `simulator/chat_100_clients` (criterion): 100 clients sign in (the 7-step sign-in,
//!   `bjoin` + `bccontext` of Lobby), then 5 rounds in which every client posts once to
//!   Lobby (each post relayed to the 99 others), rounds 2 simulated seconds apart - 500
//!   posts, 49,500 relays. Throughput is in simulated **milliseconds** per wall second,
//!   so criterion's `Kelem/s` reads as "x real time". Target (issue 14): >= 10x.
//! - The scale scenarios of `scenarios/scale/`, each run once and timed (too long for
//!   criterion's samples), invariants on, printed with their target (issue 14):
//!   `lobby-100.toml` (100 clients, one post a minute, 10 simulated minutes) <= 6 s;
//!   `rooms-1000.toml` (1,000 clients in 10 rooms of 100, a post per room every 10 s for
//!   10 simulated minutes, ~59,400 relays) <= 60 s. Skip them with `SIM_BENCH_SCALE=0`.
//!
//! Run: `cargo bench --bench simulator`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pchat_sim::runner::{run_sim, run_sim_with, SimOptions};
use pchat_sim::scenario::Scenario;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// The allocator of the `pchat-sim` binary (sim/src/main.rs), so the bench measures
/// what QA runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// Runs `scenarios/scale/<file>` once with invariants on; prints wall time, simulated
/// time, real-time factor and whether it met `target`.
fn scale_run(file: &str, target: Duration) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/scale")
        .join(file);
    let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let r = run_sim_with(&sc, 1, &SimOptions { invariants: true });
    let wall = started.elapsed();
    assert!(
        r.passed(),
        "{file} passes: {:?} {:?}",
        r.failure,
        r.violations
    );
    eprintln!(
        "simulator: {file}: {} clients, {} SIP messages, {:.1} simulated s in {:.2} wall s = {:.1}x real time; target <= {} s: {}",
        sc.file.clients.len(),
        r.transcript.message_count(),
        r.elapsed.as_secs_f64(),
        wall.as_secs_f64(),
        r.elapsed.as_secs_f64() / wall.as_secs_f64(),
        target.as_secs(),
        if wall <= target { "met" } else { "MISSED" }
    );
}

fn bench_scale(_c: &mut Criterion) {
    if std::env::var("SIM_BENCH_SCALE").is_ok_and(|v| v == "0") {
        return;
    }
    scale_run("lobby-100.toml", Duration::from_secs(6));
    scale_run("rooms-1000.toml", Duration::from_secs(60));
}

fn bench_simulator(c: &mut Criterion) {
    let sc = scenario();
    let started = Instant::now();
    let first = run_sim(&sc, 1);
    let wall = started.elapsed();
    assert!(first.passed(), "bench scenario passes: {:?}", first.failure);
    let sim_ms = first.elapsed.as_millis() as u64;
    eprintln!(
        "simulator: chat_100_clients: {CLIENTS} clients, {} steps, {} SIP messages, {:.1} simulated s in {:.2} wall s = {:.2}x real time (target >= 10x)",
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

criterion_group!(benches, bench_simulator, bench_scale);
criterion_main!(benches);
