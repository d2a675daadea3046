//! Run features of issue 17 seen from the outside: step labels without `{n}`.

use pchat_sim::runner::run_sim;
use pchat_sim::scenario::Scenario;
use std::path::Path;

const TEMPLATE: &str = "[[client]]\nname = \"u{n}\"\nuri = \"sip:u{n}@contoso.com\"\ncount = 3\n\
                        [[client]]\nname = \"solo\"\nuri = \"sip:solo@contoso.com\"\n\
                        [[step]]\nclient = \"u{n}\"\naction = \"subscribe\"\n\
                        [[step]]\nclient = \"solo\"\naction = \"subscribe\"\n";

#[test]
fn template_step_labels_name_their_clients() {
    let s = Scenario::parse(TEMPLATE, Path::new("labels.toml")).unwrap();
    let r = run_sim(&s, 1);
    assert!(r.passed(), "{:?}", r.failure);
    let text = r.transcript.render();
    assert!(text.contains("# step 1 (u1..u3 subscribe)"), "{text}");
    assert!(text.contains("# step 2 (solo subscribe)"), "{text}");
    assert!(!text.contains("{n}"), "{text}");
}

const POSTS: &str = "[[client]]\nname = \"user1\"\nuri = \"sip:user1@contoso.com\"\n\
                     [[client]]\nname = \"user2\"\nuri = \"sip:user2@contoso.com\"\n\
                     [[step]]\nclient = \"user1\"\naction = \"sign-in\"\nrooms = [\"Design\"]\n\
                     [[step]]\nclient = \"user2\"\naction = \"sign-in\"\nrooms = [\"Design\"]\n\
                     [[step]]\nclient = \"user1\"\naction = \"post\"\nroom = \"Design\"\ntext = \"p{i}\"\nrepeat = 5\n\
                     [[step]]\nclient = \"user2\"\naction = \"receive\"\nkind = \"grpchat\"\nroom = \"Design\"\nexpect = { text = \"p5\" }\n";

fn with_thresholds(t: &str) -> pchat_sim::runner::RunReport {
    let s = Scenario::parse(&format!("[thresholds]\n{t}\n{POSTS}"), Path::new("t.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    run_sim(&s, 1)
}

#[test]
fn latency_thresholds_pass_and_fail_on_the_measured_percentiles() {
    let ok = with_thresholds("post_p50_ms = 1000\npost_p99_ms = 1000\nrelay_p99_ms = 1000");
    assert!(ok.passed(), "{:?}", ok.violations);
    // Simulated links take 1..5 ms each way: no post is answered within 0 ms.
    let slow = with_thresholds("post_p99_ms = 0\nrelay_p50_ms = 0");
    assert!(!slow.passed());
    assert_eq!(slow.violations.len(), 2, "{:?}", slow.violations);
    assert!(
        slow.violations[0].starts_with("threshold post_p99_ms = 0: ")
            && slow.violations[0].contains("over 5 posts"),
        "{:?}",
        slow.violations
    );
    assert!(
        slow.violations[1].contains("relay_p50_ms"),
        "{:?}",
        slow.violations
    );
    let text = pchat_sim::report::problems(&slow).join("\n");
    assert!(
        text.contains("(not met)") && !text.contains("invariant"),
        "{text}"
    );
}

#[test]
fn a_threshold_with_nothing_to_measure_fails() {
    let s = Scenario::parse(
        &format!("[thresholds]\nrelay_p99_ms = 100\n{TEMPLATE}"),
        Path::new("t.toml"),
    )
    .unwrap();
    let r = run_sim(&s, 1);
    assert_eq!(
        r.violations,
        vec!["threshold relay_p99_ms = 100: no relays to measure"]
    );
}

const MACRO: &str = "[[macro]]\nname = \"join-and-greet\"\n\
                     [[macro.step]]\naction = \"sign-in\"\nrooms = [\"Design\"]\n\
                     [[macro.step]]\naction = \"post\"\nroom = \"Design\"\ntext = \"hello\"\n\
                     [[client]]\nname = \"user1\"\nuri = \"sip:user1@contoso.com\"\n\
                     [[client]]\nname = \"user2\"\nuri = \"sip:user2@contoso.com\"\n\
                     [[step]]\nclient = \"user1\"\nmacro = \"join-and-greet\"\n\
                     [[step]]\nclient = \"user2\"\nmacro = \"join-and-greet\"\n\
                     [[step]]\nclient = \"user1\"\naction = \"receive\"\nkind = \"grpchat\"\nroom = \"Design\"\nexpect = { author = \"sip:user2@contoso.com\" }\n";

#[test]
fn a_macro_stands_for_its_steps_with_the_using_client() {
    let s = Scenario::parse(MACRO, Path::new("m.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.file.steps.len(), 5);
    // The expanded steps are located at the macro's lines.
    assert_eq!(s.step_location(0), "m.toml:3:1");
    assert_eq!(s.step_location(2), "m.toml:3:1");
    let r = run_sim(&s, 1);
    assert!(r.passed(), "{:?}", r.failure);
    let text = r.transcript.render();
    assert!(
        text.contains("# step 3 (user2 sign-in Design)")
            || text.contains("# step 3 (user2 sign-in)"),
        "{text}"
    );
}

#[test]
fn macro_errors_are_located_and_suggest() {
    let bad = MACRO
        .replace(
            "macro = \"join-and-greet\"\n[[step]]\nclient = \"user2\"",
            "macro = \"join-and-gret\"\n[[step]]\nclient = \"user2\"",
        )
        .replace(
            "client = \"user2\"\nmacro",
            "client = \"user2\"\nrepeat = 2\nmacro",
        );
    let e = Scenario::parse(&bad, Path::new("m.toml")).unwrap_err();
    let all = e.to_string();
    assert!(
        all.contains("unknown macro \"join-and-gret\"; did you mean \"join-and-greet\"?"),
        "{all}"
    );
    assert!(
        all.contains("key `repeat` does not apply to a step that uses a macro"),
        "{all}"
    );
}

#[test]
fn csv_data_gives_users_and_texts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "name,uri\nalice,sip:alice@contoso.com\nbob,sip:bob@contoso.com\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("texts.csv"),
        "text\n\"hello, world\"\nsecond\n",
    )
    .unwrap();
    let scenario = "[data]\nusers = \"users.csv\"\ntexts = \"texts.csv\"\n\
                    [[client]]\nname = \"u{n}\"\nuri = \"{data.users.uri}\"\ncount = 2\n\
                    [[step]]\nclient = \"u{n}\"\naction = \"sign-in\"\nrooms = [\"Lobby\"]\n\
                    [[step]]\nclient = \"u1\"\naction = \"post\"\nroom = \"Lobby\"\ntext = \"{data.texts.text} from {data.users.name}\"\nrepeat = 2\n\
                    [[step]]\nclient = \"u{n}\"\naction = \"bccontext\"\nroom = \"Lobby\"\nexpect = { contains = [\"hello, world from alice\", \"second from bob\"] }\n";
    let path = dir.path().join("csv.toml");
    std::fs::write(&path, scenario).unwrap();
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let uris: Vec<&str> = s.file.clients.iter().map(|c| c.uri.as_str()).collect();
    assert_eq!(uris, ["sip:alice@contoso.com", "sip:bob@contoso.com"]);
    let r = run_sim(&s, 1);
    assert!(r.passed(), "{:?}", r.failure);
    let bad = scenario.replace("{data.texts.text}", "{data.texts.txt}");
    std::fs::write(&path, bad).unwrap();
    let e = Scenario::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("unknown data reference `{data.texts.txt}`"),
        "{e}"
    );
}

#[test]
fn watch_runs_again_when_the_file_changes() {
    use std::io::BufRead;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.toml");
    std::fs::write(&file, TEMPLATE).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pchat-sim"))
        .args(["run", "--watch", "-j", "1"])
        .arg(&file)
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pchat-sim runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |want: &str| -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(want) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    let first = wait_for("watching for changes");
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&file, TEMPLATE.replace("count = 3", "count = 2")).unwrap();
    let changed = first && wait_for("changed:");
    let rerun =
        changed && wait_for("running 1 scenario run(s)") && wait_for("watching for changes");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first && changed && rerun,
        "first {first}, changed {changed}, rerun {rerun}"
    );
}
