//! The pool scenarios (`scenarios/pool/`, issue 15) pass in the simulator too. They
//! are written for the live pool behind Kamailio (`.ci/pool-smoke.sh` runs them with
//! `--target`); `pchat-sim run scenarios/` does not descend into `scenarios/pool/`,
//! so this test keeps them runnable on one simulated server, twice with the same
//! transcript.

use pchat_sim::runner::run_sim;
use pchat_sim::scenario::{discover, Scenario};
use std::path::PathBuf;

#[test]
fn pool_scenarios_pass_in_the_simulator() {
    let sim = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = sim
        .parent()
        .map(PathBuf::from)
        .unwrap_or(sim)
        .join("scenarios/pool");
    let files = discover(&dir).expect("scenarios/pool readable");
    assert!(!files.is_empty(), "no scenario under {}", dir.display());
    for f in files {
        let s = Scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
        let report = run_sim(&s, 1);
        assert!(
            report.passed(),
            "{}: {}",
            s.name(),
            pchat_sim::report::problems(&report).join("\n")
        );
        let again = run_sim(&s, 1);
        assert_eq!(
            report.transcript.render_raw(),
            again.transcript.render_raw(),
            "{}: same seed, same transcript",
            s.name()
        );
    }
}
