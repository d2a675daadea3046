//! The pool scenarios (`scenarios/pool/`, issue 15) in the simulator: each runs on a
//! simulated pool (`[pool] servers = N`: N member hosts running the server code on
//! one shared store, docs/pool.md) with every invariant checked, including the
//! pool-wide ones (`pchat_sim::pool_invariants`), and twice with the same transcript.
//! `.ci/pool-smoke.sh` runs the same files live through Kamailio (`--target`), where
//! those that inject member faults are skipped.

use pchat_sim::runner::{run_sim_with, SimOptions};
use pchat_sim::scenario::{discover, Scenario};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn pool_dir() -> PathBuf {
    let sim = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    sim.parent()
        .map(PathBuf::from)
        .unwrap_or(sim)
        .join("scenarios/pool")
}

/// The server addresses (`IP:5060`) the clients were answered from.
fn server_addresses(raw: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b\d+\.\d+\.\d+\.\d+:5060\b").expect("regex");
    re.find_iter(raw).map(|m| m.as_str().to_string()).collect()
}

#[test]
fn pool_scenarios_pass_in_the_simulator() {
    let files = discover(&pool_dir()).expect("scenarios/pool readable");
    assert!(
        files.len() >= 3,
        "pool scenarios under {}",
        pool_dir().display()
    );
    let opts = SimOptions { invariants: true };
    for f in files {
        let s = Scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
        let servers = s.file.pool.as_ref().map_or(0, |p| p.servers);
        assert!(servers >= 3, "{}: a pool scenario runs on a pool", s.name());
        let report = run_sim_with(&s, 1, &opts);
        assert!(
            report.passed(),
            "{}: {}",
            s.name(),
            pchat_sim::report::problems(&report).join("\n")
        );
        let raw = report.transcript.render_raw();
        assert_eq!(
            server_addresses(&raw).len(),
            servers as usize,
            "{}: every member served a client",
            s.name()
        );
        let again = run_sim_with(&s, 1, &opts);
        assert_eq!(
            raw,
            again.transcript.render_raw(),
            "{}: same seed, same transcript",
            s.name()
        );
    }
}

/// Runs `sim/tests/data/<name>` (simulator-only pool files, kept out of
/// `scenarios/pool/` so the live smoke does not run them) with every invariant on, and
/// fails with the report's problems.
fn run_data_file(name: &str) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let s = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let report = run_sim_with(&s, 1, &SimOptions { invariants: true });
    assert!(
        report.passed(),
        "{}",
        pchat_sim::report::problems(&report).join("\n")
    );
}

/// `ntc:newcontent` across the pool (`pool-newcontent.toml`): followers online on either
/// member get the unread count once.
#[test]
fn new_content_reaches_followers_on_every_member() {
    run_data_file("pool-newcontent.toml");
}

/// A room updated on one member reaches the other (`pool-room-update.toml`):
/// `ntc:chanupdate` there, and a removed user is parted and refused there.
#[test]
fn room_updates_reach_every_member() {
    run_data_file("pool-room-update.toml");
}
