//! Runs every scenario under `scenarios/` in the simulator and compares its normalized
//! transcript with the insta snapshot under `snapshots/` (review changes with
//! `cargo insta review`; never accept blindly). Also checks determinism: the same
//! scenario and seed, run twice, give a byte-identical transcript.

use pchat_sim::runner::run_sim;
use pchat_sim::scenario::{discover, Scenario};
#[allow(unused_imports)]
use pchat_sim::transcript::Transcript;
use std::path::PathBuf;

/// Messages above which a scenario's snapshot is [`Transcript::summary`].
const LONG_TRANSCRIPT: usize = 2000;

fn root() -> PathBuf {
    let sim = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    sim.parent().map(PathBuf::from).unwrap_or(sim)
}

fn scenarios() -> Vec<Scenario> {
    let files = discover(&root().join("scenarios")).expect("scenarios/ readable");
    assert!(
        files.len() >= 4,
        "expected the shipped scenarios, found {files:?}"
    );
    files
        .iter()
        .map(|f| Scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

#[test]
fn every_scenario_passes_and_matches_its_snapshot() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let _guard = settings.bind_to_scope();
    for s in scenarios() {
        let seed = s.file.seed.unwrap_or(1);
        let report = run_sim(&s, seed);
        assert!(
            report.passed(),
            "{}: {}",
            s.name(),
            pchat_sim::report::problems(&report).join("\n")
        );
        // Transcripts too long to review message by message are snapshotted as a digest.
        let shown = if report.transcript.message_count() > LONG_TRANSCRIPT {
            report.transcript.summary()
        } else {
            report.transcript.render()
        };
        insta::assert_snapshot!(s.name(), shown);
        if let Some(output) = &report.compliance_output {
            assert!(!output.is_empty(), "{}: no compliance output", s.name());
            insta::assert_snapshot!(format!("{}-compliance", s.name()), output);
        }
    }
}

#[test]
fn same_seed_same_transcript() {
    for s in scenarios() {
        let a = run_sim(&s, 42).transcript.render_raw();
        let b = run_sim(&s, 42).transcript.render_raw();
        assert!(!a.is_empty());
        assert_eq!(
            a,
            b,
            "{}: transcript differs between two runs with seed 42",
            s.name()
        );
    }
}
