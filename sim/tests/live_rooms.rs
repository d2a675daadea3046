//! Live runs with their own rooms (issue 17): against a real server on loopback (mode
//! "none", web services on), a scenario with its own `[[room]]` - which the server does
//! not have - runs live after `live_rooms::provision` created the room through the
//! room-management API, twice (the second time the room exists: it is reset), and
//! `retire` takes it from the scenario users' view afterwards.

use pchat_server::config::Config;
use pchat_server::loopback::Loopback;
use pchat_sim::live_rooms::{provision, retire, RoomAdmin};
use pchat_sim::runner::run_live_with;
use pchat_sim::scenario::Scenario;
use std::path::Path;

/// The scenario: a scenario with its own [[room]]s, run live.
const SCENARIO: &str = include_str!("data/live-own-room.toml");

/// A server with web services and a Default category whose creator is roomadmin, on
/// its own thread; returns (SIP, HTTP) addresses.
fn start_server(dir: &Path) -> (String, String) {
    let d = dir.display();
    let text = format!(
        "domain = \"contoso.com\"\n[store]\npath = \"{d}/store.db\"\n[http]\nlisten = \"127.0.0.1:0\"\nfile_store = \"{d}/files\"\ncompliance_file_store = \"{d}/cfiles\"\n[[category]]\nname = \"Default\"\ncreators = [\"sip:roomadmin@contoso.com\"]\n[[room]]\nname = \"Lobby\"\nprivacy = \"open\"\n"
    );
    let cfg = Config::from_toml(&text, Path::new("live.toml")).expect("config");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let server = Loopback::start(cfg, 1_700_000_000_000, 7).await.unwrap();
            tx.send((server.sip.clone(), server.http.clone())).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("server started")
}

#[test]
fn a_scenario_with_its_own_room_runs_live_twice_and_the_room_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let (sip, http) = start_server(dir.path());
    let s = Scenario::parse(SCENARIO, Path::new("live-own-room.toml")).unwrap();
    assert!(
        s.why_not_live(None).is_some(),
        "without room creation: skipped"
    );
    assert_eq!(s.why_not_live_with(None, true), None);
    let admin = RoomAdmin {
        uri: "sip:roomadmin@contoso.com".into(),
        password: None,
        sip: sip.clone(),
        http: http.clone(),
    };
    for round in 1..=2 {
        let ours =
            provision(&admin, &s.file.rooms).unwrap_or_else(|e| panic!("round {round}: {e}"));
        // QA Ops is ours (created, then reset); Lobby is the server's own: left alone.
        let names: Vec<&str> = ours.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["QA Ops"], "round {round}");
        let r = run_live_with(&s, &sip, Some(&http), round);
        assert!(
            r.passed(),
            "round {round}: {:?} {:?}",
            r.failure,
            r.step_failures
        );
        retire(&admin, &ours).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    // A non-member's view after retirement: not listed for qa1 any more.
    let check = Scenario::parse(
        "[[room]]\nname = \"QA Ops\"\n[[client]]\nname = \"qa1\"\nuri = \"sip:qa1@contoso.com\"\n[[step]]\nclient = \"qa1\"\naction = \"sign-in\"\n[[step]]\nclient = \"qa1\"\naction = \"chansrch\"\ncriteria = \"QA Ops\"\nexpect = { rooms = [] }\n",
        Path::new("check.toml"),
    )
    .unwrap();
    let r = run_live_with(&check, &sip, Some(&http), 9);
    assert!(r.passed(), "retired room still found: {:?}", r.failure);
}
