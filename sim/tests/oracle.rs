//! Each hole the oracle had (issue 17) planted in a test: the harness now fails it.

use pchat_sim::report::{self, Entry};
use pchat_sim::runner::{run_sim, with_run_msgids};
use pchat_sim::scenario::{Action, Scenario};
use pchat_sim::transcript::Transcript;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    let sim = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    sim.parent().map(PathBuf::from).unwrap_or(sim)
}

fn load(name: &str) -> Scenario {
    Scenario::load(&root().join("scenarios").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// `t` without the relays of posts (server -> client grpchat INFOs): what a client sees
/// when the server delivers nothing.
fn without_relays(t: &Transcript) -> Transcript {
    let out = Transcript::default();
    for e in t.entries() {
        let text = String::from_utf8_lossy(&e.bytes);
        let relay = e.from == "server" && text.starts_with("INFO ") && text.contains("<grpchat");
        if e.from == "#" {
            out.note(&text);
        } else if !relay {
            out.record(&e.from, &e.to, &e.bytes);
        }
    }
    out
}

/// Hole 1: posts acknowledged and relayed to nobody used to pass ("at most once" only).
#[test]
fn nothing_delivered_fails_the_completeness_invariant() {
    let s = load("join-and-post.toml");
    let r = run_sim(&s, 1);
    assert!(r.passed(), "{:?}", report::problems(&r));
    assert!(pchat_sim::completeness::check(&s, &r.transcript).is_empty());
    let v = pchat_sim::completeness::check(&s, &without_relays(&r.transcript));
    assert!(
        v.iter()
            .any(|m| m.starts_with("user2 never received post \"Hello <team> & friends\"")),
        "{v:?}"
    );
    // The many-clients scenario: every member, every post.
    let s = load("many-clients.toml");
    let r = run_sim(&s, 1);
    assert!(r.passed(), "{:?}", report::problems(&r));
    let v = pchat_sim::completeness::check(&s, &without_relays(&r.transcript));
    assert!(v.len() > 10, "{}", v.len());
}

/// Hole 1's cause live: a second run against the same server re-used the first run's
/// message ids. Live runs now prefix them per run.
#[test]
fn live_runs_prefix_message_ids_per_run() {
    let s = load("retry-msgid.toml");
    let ids = |s: &Scenario| -> Vec<String> {
        s.file
            .steps
            .iter()
            .filter_map(|st| match st.get_ref().action.get_ref() {
                Action::Post { msgid, .. } => msgid.clone(),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (ids(&with_run_msgids(&s, 1)), ids(&with_run_msgids(&s, 2)));
    assert!(!a.is_empty());
    assert!(a.iter().zip(&b).all(|(x, y)| x != y), "{a:?} {b:?}");
    assert!(a.iter().zip(ids(&s)).all(|(x, y)| x.ends_with(&y)));
}

const KEEP_GOING: &str = r#"
keep_going = true
[[client]]
name = "u1"
uri = "sip:u1@contoso.com"
[[step]]
client = "u1"
action = "sign-in"
[[step]]
client = "u1"
action = "chansrch"
criteria = "Des"
expect = { rooms = ["No such room"] }
[[step]]
client = "u1"
action = "getinv"
"#;

/// Hole 2: under keep_going a wrong expectation used to pass.
#[test]
fn keep_going_failures_fail_the_run_unless_allowed() {
    let s = Scenario::parse(KEEP_GOING, Path::new("kg.toml")).unwrap();
    let r = run_sim(&s, 1);
    assert!(!r.passed(), "a failed step under keep_going fails the run");
    assert_eq!(r.steps_passed, 2, "and the run went on");
    assert_eq!(r.step_failures.len(), 1, "{:?}", r.step_failures);
    assert!(
        r.step_failures[0].starts_with("kg.toml:9:1: step 2"),
        "{:?}",
        r.step_failures
    );
    let entry = Entry::Ran {
        report: r,
        replay: "replay".into(),
        wall: Default::default(),
    };
    let xml = report::junit("run", std::slice::from_ref(&entry));
    assert!(
        xml.contains("failures=\"1\"") && xml.contains("kg.toml:9:1: step 2"),
        "{xml}"
    );
    assert!(report::summary_table(&[entry]).contains("FAIL (1 step(s) failed)"));
    // allow_fail = true on that step: reported, not failed.
    let allowed = KEEP_GOING.replace("expect = { rooms", "allow_fail = true\nexpect = { rooms");
    let s = Scenario::parse(&allowed, Path::new("kg.toml")).unwrap();
    let r = run_sim(&s, 1);
    assert!(r.passed(), "{:?}", report::problems(&r));
    assert_eq!(r.allowed_failures.len(), 1);
    let xml = report::junit(
        "run",
        &[Entry::Ran {
            report: r,
            replay: String::new(),
            wall: Default::default(),
        }],
    );
    assert!(xml.contains("(allowed to fail) kg.toml:9:1"), "{xml}");
}

/// Reports: two files with one name get distinct names (and a warning).
#[test]
fn duplicate_names_are_made_unique() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"same\"\n[[client]]\nname = \"u\"\nuri = \"sip:u@contoso.com\"\n[[step]]\nclient = \"u\"\naction = \"subscribe\"\n";
    for f in ["a.toml", "b.toml"] {
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    std::fs::write(dir.path().join("c.toml"), "[[step]]\naction = \"psot\"\n").unwrap();
    let sel = pchat_sim::batch::select(&[dir.path().display().to_string()], None).unwrap();
    let names: Vec<String> = sel.scenarios.iter().map(Scenario::name).collect();
    assert_eq!(names, ["same", "same-2"]);
    assert_eq!(sel.warnings.len(), 1, "{:?}", sel.warnings);
    assert!(sel.warnings[0].contains("b.toml"), "{:?}", sel.warnings);
    // The broken file is reported by itself; the others still load.
    assert_eq!(sel.broken.len(), 1);
    assert!(sel.broken[0].to_string().contains("did you mean \"post\""));
}

fn pchat_sim(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pchat-sim"))
        .args(args)
        .env("CI", "true")
        .output()
        .expect("pchat-sim runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Hole 3: `--plant-bug` was hidden from --help.
#[test]
fn plant_bug_is_in_the_help() {
    let (code, text) = pchat_sim(&["explore", "--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("--plant-bug") && text.contains("--duration"),
        "{text}"
    );
}

/// A bad file fails by itself (every error listed, in the JUnit report too) while the
/// other files run.
#[test]
fn a_bad_file_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[client]]\nname = \"u\"\nuri = \"sip:u@contoso.com\"\n[[step]]\nclient = \"u\"\naction = \"wait\"\nms = \"500\"\n[[step]]\nclient = \"u\"\naction = \"join\"\nroom = \"Design\"\ntxt = \"x\"\n",
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let good = root().join("scenarios/sign-in.toml");
    let (code, text) = pchat_sim(&[
        "run",
        &good.display().to_string(),
        &bad.display().to_string(),
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ok   sign-in"), "{text}");
    assert!(
        text.contains(
            "bad.toml:7:6: `ms`: expected a number of milliseconds, got the string \"500\""
        ),
        "{text}"
    );
    assert!(
        text.contains("bad.toml:12:1: key `txt` does not apply to action `join`"),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\"") && xml.contains("errors=\"1\""),
        "{xml}"
    );
}

/// `expect.within_ms`: a latency assertion on a step.
#[test]
fn within_ms_bounds_a_step() {
    let text = |ms: u64| {
        format!(
            "[[client]]\nname = \"u1\"\nuri = \"sip:u1@contoso.com\"\n[[step]]\nclient = \"u1\"\naction = \"sign-in\"\nexpect = {{ within_ms = {ms} }}\n"
        )
    };
    let slow = run_sim(&Scenario::parse(&text(1), Path::new("w.toml")).unwrap(), 1);
    assert!(!slow.passed());
    assert!(
        slow.failure
            .as_deref()
            .unwrap_or_default()
            .contains("at most 1 ms"),
        "{:?}",
        slow.failure
    );
    let ok = run_sim(
        &Scenario::parse(&text(10_000), Path::new("w.toml")).unwrap(),
        1,
    );
    assert!(ok.passed(), "{:?}", report::problems(&ok));
}
