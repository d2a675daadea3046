//! The real binary under `kill -9`: a client posts under load over loopback TCP, the
//! server is killed with SIGKILL mid-stream, restarted on the same files, and its
//! compliance worker runs: every acknowledged post appears exactly once in the adapter
//! output, and `pchat-server compliance verify` reports nothing missing or duplicated.
//! Loopback only; every wait is bounded.

mod common;

use common::{assert_compliance_verified, free_port, join_xml, post_xml, Proc, Session};
use pchat_server::compliance::adapter::{read_output, Format};
use pchat_server::compliance::EventKind;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const POSTS: u32 = 400;
const KILL_AFTER_ACKS: usize = 120;

fn start(config: &Path, port: u16) -> Proc {
    let config = config.to_str().expect("UTF-8 path");
    let sip = format!("127.0.0.1:{port}");
    Proc::start(
        Path::new("."),
        &["--config", config, "--sip", &sip],
        "warn",
        false,
    )
}

fn open(port: u16, tag: &str) -> Session {
    Session::open(port, "user1", "k9", tag, format!("kill9-{tag}"))
}

fn acks(s: &Session) -> usize {
    let inbox = s.inbox.lock().unwrap();
    inbox.responses.values().filter(|(c, _)| *c == 200).count()
}

#[test]
fn kill_dash_nine_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let config = d.join("pchat.toml");
    let text = format!(
        "domain = \"contoso.com\"\n[store]\npath = {:?}\n[compliance]\nenabled = true\nrun_interval = \"100ms\"\n\
         output_dir = {:?}\nadapter = \"xml\"\npath = {:?}\nbatch_size = 50\n\
         [[room]]\nname = \"Design\"\nprivacy = \"open\"\n",
        d.join("pchat.db"),
        d.join("out"),
        d.join("mgccomp.db")
    );
    std::fs::write(&config, text).expect("config written");
    let port = free_port();
    let mut server = start(&config, port);

    let mut s = open(port, "a");
    let join = s.info(&join_xml(1));
    assert_eq!(s.wait_code(join), Some(200), "join INFO answered");
    std::thread::sleep(Duration::from_millis(100));

    // Post under load (pipelined), kill -9 after some acknowledgements.
    let mut sent: BTreeMap<u32, String> = BTreeMap::new();
    let mut killed = false;
    for k in 0..POSTS {
        let text = format!("post-{k}");
        let cseq = s.info(&post_xml(100 + u64::from(k), &text));
        sent.insert(cseq, text);
        if acks(&s) >= KILL_AFTER_ACKS {
            server.kill9();
            killed = true;
            break;
        }
        if k % 20 == 19 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if !killed {
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.inbox.lock().unwrap().responses.len() < KILL_AFTER_ACKS && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill9();
    }
    std::thread::sleep(Duration::from_millis(100));
    let acked: Vec<String> = {
        let r = &s.inbox.lock().unwrap().responses;
        sent.iter()
            .filter(|(c, _)| r.get(c).is_some_and(|(code, _)| *code == 200))
            .map(|(_, t)| t.clone())
            .collect()
    };
    s.close();
    eprintln!(
        "sent {} posts, {} acknowledged before kill -9",
        sent.len(),
        acked.len()
    );
    assert!(
        acked.len() >= KILL_AFTER_ACKS.min(POSTS as usize) / 2,
        "only {} acks",
        acked.len()
    );

    // Restart on the same files; the worker exports everything committed.
    let server = start(&config, port);
    let formats: [&dyn Format; 1] = [&pchat_server::compliance::xml::Xml];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    while Instant::now() < deadline {
        counts.clear();
        for x in read_output(&d.join("out"), &formats).unwrap_or_default() {
            if x.event.kind == EventKind::Chat {
                *counts.entry(x.event.ev.content).or_default() += 1;
            }
        }
        if acked.iter().all(|t| counts.contains_key(t)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stop cleanly (SIGTERM) so the final run exports the rest, then verify.
    server.stop();
    for t in &acked {
        assert_eq!(
            counts.get(t),
            Some(&1),
            "acknowledged {t} must appear exactly once"
        );
    }
    for (t, n) in &counts {
        assert_eq!(*n, 1, "{t} appears {n} times");
        assert!(sent.values().any(|s| s == t), "{t} was never posted");
    }
    assert_compliance_verified(&config);
}
