//! The QA workflow end to end: a planted bug is found by `explore` and shrunk, its file
//! replays exactly; JUnit and pcap outputs; scenario file errors for the fault keys.

use pchat_sim::explore::{explore, run_case, ExploreOptions};
use pchat_sim::pcap;
use pchat_sim::report::{self, Entry};
use pchat_sim::runner::run_sim;
use pchat_sim::scenario::Scenario;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    let sim = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    sim.parent().map(PathBuf::from).unwrap_or(sim)
}

fn load(name: &str) -> Scenario {
    Scenario::load(&root().join("scenarios").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Explores 64 schedules around `base` with `bug` planted; what it found and shrunk.
/// (`None`: the bug is planted by the base file's own `planted_bug`.)
fn find_planted(base: &Scenario, bug: Option<&str>, out: &Path) -> pchat_sim::explore::Found {
    let opts = ExploreOptions {
        runs: 64,
        seed: 1,
        out_dir: out.to_path_buf(),
        planted_bug: bug.map(str::to_string),
        max_shrink_iters: 256,
        deadline: None,
    };
    let report = explore(base, &opts, &|_| {}).unwrap();
    report.found.expect("explore finds the planted bug")
}

/// `report` has a violation that mentions `what`.
fn assert_violation(report: &pchat_sim::runner::RunReport, what: &str) {
    assert!(
        report.violations.iter().any(|v| v.contains(what)),
        "{:?}",
        report.violations
    );
}

#[test]
fn planted_bug_is_found_shrunk_and_replayed_exactly() {
    // The bug planted by the file itself (explore used to ignore `planted_bug` there).
    let plain = load("explore-base.toml");
    let text = format!("planted_bug = \"no-retry-dedup\"\n{}", plain.source);
    let base = Scenario::parse(&text, &plain.path).unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap();
    let found = find_planted(&base, None, out.path());
    assert_eq!(
        found.case.faults.len(),
        1,
        "shrunk to one fault: {:?}",
        found.case
    );
    assert_violation(&found.report, "not de-duplicated");
    // The written file is a scenario that reproduces the run exactly.
    let text = std::fs::read_to_string(&found.file).unwrap();
    assert!(text.contains("[[fault]]") && text.contains("planted_bug = \"no-retry-dedup\""));
    let replayed = Scenario::load(&found.file).unwrap_or_else(|e| panic!("{e}"));
    let seed = replayed.file.seed.expect("the file carries its seed");
    assert_eq!(seed, found.case.seed);
    let again = run_sim(&replayed, seed);
    assert_eq!(again.violations, found.report.violations);
    assert_eq!(
        again.transcript.render_raw(),
        found.report.transcript.render_raw()
    );
    // The same schedule against the real server (no planted bug) holds.
    let (_, fixed) = run_case(&plain, &found.case, None).unwrap();
    assert!(fixed.violations.is_empty(), "{:?}", fixed.violations);
}

#[test]
fn exploration_without_bugs_holds() {
    let base = load("explore-base.toml");
    let out = tempfile::tempdir().unwrap();
    let opts = ExploreOptions {
        runs: 12,
        seed: 3,
        out_dir: out.path().to_path_buf(),
        planted_bug: None,
        max_shrink_iters: 16,
        deadline: None,
    };
    let report = explore(&base, &opts, &|_| {}).unwrap();
    assert!(
        report.found.is_none(),
        "{:?}",
        report.found.map(|f| f.report.violations)
    );
    assert_eq!(report.runs, 12);
}

#[test]
fn junit_lists_passes_and_failures() {
    let ok = run_sim(&load("sign-in.toml"), 1);
    let bad_text = std::fs::read_to_string(root().join("scenarios/fault-partition.toml"))
        .unwrap()
        .replacen(
            "invariants = true",
            "invariants = true\nplanted_bug = \"no-retry-dedup\"",
            1,
        );
    let bad = Scenario::parse(&bad_text, Path::new("bad.toml")).unwrap();
    let failed = run_sim(&bad, 1);
    assert!(!failed.passed(), "the planted bug breaks fault-partition");
    let wall = std::time::Duration::from_millis(1234);
    let xml = report::junit(
        "run",
        &[
            Entry::Ran {
                report: ok,
                replay: "pchat-sim run sign-in.toml --seed 1".into(),
                wall,
            },
            Entry::Ran {
                report: failed,
                replay: "pchat-sim run bad.toml --seed 1".into(),
                wall,
            },
            Entry::Skipped {
                name: "fault-crash".into(),
                why: "injects faults, which only the simulator can".into(),
            },
        ],
    );
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("tests=\"3\"")
            && xml.contains("failures=\"1\"")
            && xml.contains("skipped=\"1\""),
        "{xml}"
    );
    // Wall time, not simulated time.
    for part in [
        "time=\"1.234\"",
        "<skipped message=\"injects faults",
        "<testcase name=\"sign-in\"",
        "type=\"invariant violated\"",
        "replay: pchat-sim run bad.toml --seed 1",
    ] {
        assert!(xml.contains(part), "{part}: {xml}");
    }
}

#[test]
fn pcap_decodes_as_sip_with_tshark() {
    let r = run_sim(&load("join-and-post.toml"), 1);
    let bytes = pcap::from_transcript(&r.transcript);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("join-and-post.pcap");
    std::fs::write(&file, &bytes).unwrap();
    let run = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-Y", "sip"])
        .output();
    let Ok(out) = run else {
        println!("note: tshark is not installed; skipped decoding the pcap (CI installs it)");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = text.lines().count();
    assert_eq!(
        lines,
        r.transcript.message_count(),
        "tshark decoded {lines} SIP messages of {}:\n{text}",
        r.transcript.message_count()
    );
    for method in ["SUBSCRIBE", "INVITE", "INFO", "200 OK"] {
        assert!(text.contains(method), "no {method} in:\n{text}");
    }
}

fn parse(text: &str) -> Result<Scenario, String> {
    Scenario::parse(text, Path::new("f.toml")).map_err(|e| e.to_string())
}

const CLIENTS: &str = "[[client]]\nname = \"u{n}\"\nuri = \"sip:u{n}@contoso.com\"\ncount = 3\n\n[[step]]\nclient = \"u{n}\"\naction = \"invite\"\n";

#[test]
fn fault_keys_are_validated_with_locations() {
    let s = parse(CLIENTS).unwrap();
    assert_eq!(s.file.clients.len(), 3);
    assert_eq!(s.clients_of("u{n}"), ["u1", "u2", "u3"]);
    let e = parse(&format!(
        "{CLIENTS}\n[[fault]]\naction = \"overload\"\nms = 5\n"
    ))
    .unwrap_err();
    assert!(
        e.starts_with("f.toml:10:1:") && e.contains("before_step"),
        "{e}"
    );
    let e = parse(&format!(
        "{CLIENTS}\n[[fault]]\nbefore_step = 1\naction = \"post\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("not a fault"), "{e}");
    let e = parse(&format!(
        "{CLIENTS}\n[[step]]\naction = \"partition\"\nhosts = [\"u9\"]\n"
    ))
    .unwrap_err();
    assert!(e.starts_with("f.toml:12:10:") && e.contains("u9"), "{e}");
    let e = parse(&format!(
        "{CLIENTS}\n[[step]]\naction = \"loss\"\nrate = 2.0\n"
    ))
    .unwrap_err();
    assert!(e.contains("`rate`"), "{e}");
    let e = parse(&format!("{CLIENTS}\n[[step]]\naction = \"overload\"\n")).unwrap_err();
    assert!(e.contains("`ms`"), "{e}");
    let e = parse(&format!("planted_bug = \"x\"\n{CLIENTS}")).unwrap_err();
    assert!(e.starts_with("f.toml:1:15:"), "{e}");
}

#[test]
fn crashed_sessions_left_open_are_reported() {
    let text = std::fs::read_to_string(root().join("scenarios/fault-crash.toml")).unwrap();
    let bugged = text.replacen(
        "invariants = true",
        "invariants = true\nplanted_bug = \"no-crash-cleanup\"",
        1,
    );
    let bad = run_sim(&Scenario::parse(&bugged, Path::new("bad.toml")).unwrap(), 1);
    assert!(
        bad.violations
            .iter()
            .any(|v| v.contains("sessions left open") && v.contains("not cleaned up")),
        "{:?}",
        bad.violations
    );
    let good = run_sim(&load("fault-crash.toml"), 1);
    assert!(good.violations.is_empty(), "{:?}", good.violations);
    assert!(
        good.compliance_output
            .as_deref()
            .is_some_and(|x| x.matches("type=\"PART\"").count() >= 1),
        "the restart recorded user1's PART: {:?}",
        good.compliance_output
    );
}

#[test]
fn explore_finds_a_crashed_server_that_leaves_sessions_open() {
    let base = load("explore-base.toml");
    let out = tempfile::tempdir().unwrap();
    let found = find_planted(&base, Some("no-crash-cleanup"), out.path());
    assert_eq!(found.case.faults.len(), 1, "{:?}", found.case);
    let text = std::fs::read_to_string(&found.file).unwrap();
    assert!(
        text.contains("action = \"crash\""),
        "shrunk to a crash: {text}"
    );
    assert_violation(&found.report, "sessions left open");
}
