//! Proof that the compliance pipeline never loses or duplicates an event (issue 4).
//!
//! The real server code runs on a turmoil host with the compliance worker; simulated
//! users join, post and read history while the server host is crashed and restarted:
//! - at every pipeline step, through the worker's fault hook (the hook halts the worker
//!   at the chosen [`FaultPoint`] occurrence, then the test crashes and restarts the
//!   host - the files are exactly as that step left them),
//! - at random simulated times (which covers "after the action committed"),
//!   with adapter failures and store commit failures injected as well.
//!
//! The oracle, after a final drain (restart + one adapter run): `verify` is clean (every
//! event id found exactly once, chat messages and CHAT events paired), every
//! acknowledged post appears exactly once in the adapter output, no output event
//! comes from nowhere, and acknowledged history reads and joins have their events.
//!
//! `proptest_random_schedules` runs `PCHAT_COMPLIANCE_CASES` (default 1000) random
//! schedules; a failure shrinks and prints the minimal schedule as a TOML file that
//! `PCHAT_COMPLIANCE_REPLAY=<file> cargo test -p pchat-sim --test compliance replay --
//! --ignored` replays.

use pchat_server::clock::{TokioClock, SIM_EPOCH_MS};
use pchat_server::cmd::history::BcQuery;
use pchat_server::cmd::{BcContext, CmdKind, Join};
use pchat_server::compliance::adapter::{read_output, Format};
use pchat_server::compliance::verify::verify;
use pchat_server::compliance::worker::adapter_for;
use pchat_server::compliance::{ComplianceDb, EventKind, Fault, FaultHook, FaultPoint, Worker};
use pchat_server::config::{AdapterKind, Config, RunInterval};
use pchat_server::store::{HookedStore, SqliteStore, StoreError, StoreHook, StoreOp};
use pchat_server::xccos::ChanRef;
use pchat_sim::client::Client;
use pchat_sim::transcript::Transcript;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PORT: u16 = 5060;
const ROOMS: [&str; 2] = ["Design", "Lobby"];
/// Simulated time each user lingers after its ops (the worker runs every 50 ms).
const SETTLE_MS: u64 = 500;

/// What a simulated user does, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Op {
    /// grpchat a fresh text to the user's room.
    Post,
    /// bccontext of the user's room.
    History,
    /// Join the other room as well (and post there from now on).
    JoinOther,
}

/// A replayable schedule (printed as TOML when the oracle fails).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Schedule {
    /// turmoil seed (message timing) and server seed.
    seed: u64,
    /// `jsonl` or `xml`.
    adapter: String,
    one_room_per_file: bool,
    batch_size: u32,
    /// One op list per user (`sip:u<i>@contoso.com`).
    users: Vec<Vec<Op>>,
    /// Halt the worker (then crash + restart the host) at the n-th pass (1-based,
    /// counted across restarts) through a fault point.
    halts: Vec<(FaultPoint, u32)>,
    /// The adapter fails at the n-th pass through an adapter fault point.
    adapter_failures: Vec<(FaultPoint, u32)>,
    /// Crash + restart the server host at these simulated times (ms).
    crashes_at_ms: Vec<u64>,
    /// The n-th commit of the channel service's store fails (1-based, across restarts).
    commit_failures: Vec<u32>,
    /// The n-th outbox delete of the worker's store fails.
    outbox_delete_failures: Vec<u32>,
}

/// Counters shared by the hook, the flaky stores and the test loop (survive restarts).
#[derive(Default)]
struct Faults {
    passes: BTreeMap<FaultPoint, u32>,
    commits: u32,
    outbox_deletes: u32,
    halted: bool,
}

/// What the users saw acknowledged, and everything they tried.
#[derive(Default, Debug)]
struct Seen {
    attempted_posts: Vec<String>,
    acked_posts: Vec<String>,
    acked_history: BTreeMap<String, u32>,
    acked_joins: BTreeMap<String, u32>,
}

/// Fails commits / outbox deletes at the scheduled counts (counted across restarts).
struct Scheduled {
    faults: Arc<Mutex<Faults>>,
    commit_failures: Vec<u32>,
    outbox_delete_failures: Vec<u32>,
}

fn injected() -> StoreError {
    StoreError::Db("disk I/O error (injected)".into())
}

impl StoreHook for Scheduled {
    fn before(&mut self, op: StoreOp) -> Result<(), StoreError> {
        let Ok(mut f) = self.faults.lock() else {
            return Ok(());
        };
        let fail = match op {
            StoreOp::Commit => {
                f.commits += 1;
                self.commit_failures.contains(&f.commits)
            }
            StoreOp::OutboxDelete => {
                f.outbox_deletes += 1;
                self.outbox_delete_failures.contains(&f.outbox_deletes)
            }
            _ => false,
        };
        if fail {
            Err(injected())
        } else {
            Ok(())
        }
    }
}

fn room_uri(name: &str) -> String {
    let guid = pchat_server::ids::room_guid("contoso.com", name);
    pchat_server::ids::room_uri("contoso.com", &guid)
}

fn server_config(s: &Schedule, dir: &Path) -> Config {
    let mut cfg = Config::embedded_default();
    cfg.auth = Default::default(); // mode "none": these clients have no passwords
    cfg.store.path = dir.join("pchat.db");
    let c = &mut cfg.compliance;
    c.enabled = true;
    c.run_interval = RunInterval(50);
    c.batch_size = s.batch_size.max(1);
    c.path = dir.join("mgccomp.db");
    c.output_dir = dir.join("out");
    c.one_room_per_file = s.one_room_per_file;
    c.adapter = if s.adapter == "jsonl" {
        AdapterKind::Jsonl
    } else {
        AdapterKind::Xml
    };
    cfg
}

/// A scratch directory on tmpfs when there is one (fsync is then cheap: many cases).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("pchat-comp")
            .tempdir_in(shm)
        {
            return d;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

async fn connect(name: &str, uri: &str, seed: u64) -> Result<Client, String> {
    let s = turmoil::net::TcpStream::connect(("server", PORT))
        .await
        .map_err(|e| e.to_string())?;
    let local = s.local_addr().map_err(|e| e.to_string())?.to_string();
    let mut c = Client::start(name, uri, s, &local, seed, Transcript::default());
    c.timeout = Duration::from_millis(800);
    let r = c.invite("sip:pchat@contoso.com").await.map_err(|e| e.0)?;
    if r.code != 200 {
        return Err(format!("INVITE {}", r.code));
    }
    Ok(c)
}

async fn join(c: &mut Client, room: &str, seen: &Mutex<Seen>) -> Result<(), String> {
    let (_, rpl) = c
        .command(CmdKind::Join(Join {
            chan: ChanRef::Uri(room_uri(room)),
        }))
        .await
        .map_err(|e| e.0)?;
    match rpl.and_then(|r| r.resp).map(|r| r.code) {
        Some(200) => {
            *seen
                .lock()
                .unwrap()
                .acked_joins
                .entry(c.uri.clone())
                .or_default() += 1;
            Ok(())
        }
        other => Err(format!("join answered {other:?}")),
    }
}

/// One user: runs its ops in order; every op is retried (on a new connection after an
/// error) until acknowledged, with a fresh text per post attempt.
async fn user(i: usize, ops: Vec<Op>, seed: u64, seen: Arc<Mutex<Seen>>) {
    let name = format!("u{i}");
    let uri = format!("sip:u{i}@contoso.com");
    let mut rooms: Vec<&str> = vec![ROOMS[i % 2]];
    let mut client: Option<Client> = None;
    let mut conn = 0u64;
    for (k, op) in ops.iter().enumerate() {
        for attempt in 0..40u32 {
            if client.is_none() {
                conn += 1;
                let joined = async {
                    let mut c = connect(&name, &uri, seed ^ conn.wrapping_mul(0x9E37)).await?;
                    for r in &rooms {
                        join(&mut c, r, &seen).await?;
                    }
                    Ok::<_, String>(c)
                }
                .await;
                match joined {
                    Ok(c) => client = Some(c),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let Some(c) = client.as_mut() else { continue };
            let room = rooms[k % rooms.len()];
            let done = match op {
                Op::Post => {
                    let text = format!("{name}-{k}-{attempt}");
                    seen.lock().unwrap().attempted_posts.push(text.clone());
                    match c.post(&room_uri(room), &text).await {
                        Ok(r) if r.code == 200 => {
                            seen.lock().unwrap().acked_posts.push(text);
                            Ok(true)
                        }
                        Ok(r) if r.code == 503 => Ok(false),
                        Ok(r) => Err(format!("post answered {}", r.code)),
                        Err(e) => Err(e.0),
                    }
                }
                Op::History => match c
                    .command(CmdKind::BcContext(BcContext {
                        chan: ChanRef::Uri(room_uri(room)),
                        query: BcQuery::Last { cnt: 5 },
                    }))
                    .await
                {
                    Ok((_, rpl)) => match rpl.and_then(|r| r.resp).map(|r| r.code) {
                        Some(200) => {
                            *seen
                                .lock()
                                .unwrap()
                                .acked_history
                                .entry(uri.clone())
                                .or_default() += 1;
                            Ok(true)
                        }
                        Some(503) => Ok(false),
                        other => Err(format!("bccontext answered {other:?}")),
                    },
                    Err(e) => Err(e.0),
                },
                Op::JoinOther => {
                    let other = ROOMS[(i + 1) % 2];
                    if rooms.contains(&other) {
                        Ok(true)
                    } else {
                        match join(c, other, &seen).await {
                            Ok(()) => {
                                rooms.push(other);
                                Ok(true)
                            }
                            Err(e) => Err(e),
                        }
                    }
                }
            };
            match done {
                Ok(true) => break,
                Ok(false) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => {
                    client = None;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Runs `s` in the simulator, then drains and checks the oracle. Returns the restart
/// count, or the oracle's complaint.
fn run(s: &Schedule) -> Result<u32, String> {
    let dir = scratch();
    let cfg = server_config(s, dir.path());
    let faults: Arc<Mutex<Faults>> = Arc::default();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let mut sim = turmoil::Builder::new()
        .rng_seed(s.seed)
        .simulation_duration(Duration::from_secs(600))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(3))
        .build();
    {
        let (cfg, faults, s) = (cfg.clone(), faults.clone(), s.clone());
        sim.host("server", move || {
            let (cfg, faults, s) = (cfg.clone(), faults.clone(), s.clone());
            async move {
                let listener =
                    turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
                        .await?;
                let local = SocketAddr::new(turmoil::lookup("server"), PORT).to_string();
                let since = turmoil::sim_elapsed().unwrap_or_default().as_millis() as i64;
                let clock = Arc::new(TokioClock::starting_at(SIM_EPOCH_MS + since));
                let flaky =
                    |faults: &Arc<Mutex<Faults>>| -> Result<HookedStore<Scheduled>, StoreError> {
                        Ok(HookedStore::new(
                            Box::new(SqliteStore::open(&cfg.store.path)?),
                            Scheduled {
                                faults: faults.clone(),
                                commit_failures: s.commit_failures.clone(),
                                outbox_delete_failures: s.outbox_delete_failures.clone(),
                            },
                        ))
                    };
                let core = pchat_server::core::Core::new(
                    cfg.clone(),
                    Box::new(flaky(&faults)?),
                    clock,
                    s.seed,
                    &local,
                    Default::default(),
                )?;
                let hook: FaultHook = {
                    let (faults, s) = (faults.clone(), s.clone());
                    Arc::new(move |p: FaultPoint| {
                        let mut f = faults.lock().unwrap();
                        let n = f.passes.entry(p).or_default();
                        *n += 1;
                        let n = *n;
                        if s.halts.contains(&(p, n)) {
                            f.halted = true;
                            Fault::Halt
                        } else if s.adapter_failures.contains(&(p, n)) {
                            Fault::FailAdapter
                        } else {
                            Fault::Continue
                        }
                    })
                };
                let worker = Worker::new(
                    Box::new(flaky(&faults)?),
                    ComplianceDb::open(&cfg.compliance.path)?,
                    adapter_for(&cfg.compliance),
                    &cfg.compliance,
                    Some(hook),
                );
                pchat_server::host::serve_with(
                    pchat_sim::sim_net::SimListener(listener),
                    core,
                    Some(worker),
                    std::future::pending(),
                )
                .await?;
                Ok(())
            }
        });
    }
    for (i, ops) in s.users.iter().enumerate() {
        let (ops, seen, seed) = (ops.clone(), seen.clone(), s.seed ^ ((i as u64 + 1) * 7919));
        sim.client(format!("u{i}"), async move {
            user(i, ops, seed, seen).await;
            // Keep the simulation going while the worker runs (and crashes happen).
            tokio::time::sleep(Duration::from_millis(SETTLE_MS)).await;
            Ok(())
        });
    }
    let mut crashes: Vec<u64> = s.crashes_at_ms.clone();
    crashes.sort_unstable();
    crashes.reverse();
    let mut restarts = 0;
    loop {
        let finished = sim.step().map_err(|e| format!("simulation failed: {e}"))?;
        if finished {
            break;
        }
        let halted = std::mem::take(&mut faults.lock().unwrap().halted);
        let now = sim.elapsed().as_millis() as u64;
        let timed = crashes.last().is_some_and(|t| *t <= now);
        if timed {
            crashes.pop();
        }
        if halted || timed {
            sim.bounce("server");
            restarts += 1;
        }
    }
    drop(sim);
    if std::env::var_os("PCHAT_COMPLIANCE_DEBUG").is_some() {
        let f = faults.lock().unwrap();
        eprintln!(
            "restarts {restarts}, passes {:?}, commits {}, seen {:?}",
            f.passes,
            f.commits,
            seen.lock().unwrap()
        );
    }
    oracle(&cfg, &seen.lock().unwrap())?;
    Ok(restarts)
}

/// Restart + let the adapter run (no faults), then compare.
fn oracle(cfg: &Config, seen: &Seen) -> Result<(), String> {
    let mut worker =
        Worker::open(&cfg.compliance, &cfg.store.path, None).map_err(|e| e.to_string())?;
    for _ in 0..100 {
        let r = worker.run_once().map_err(|e| format!("drain: {e}"))?;
        if r.moved == 0 && r.batches == 0 {
            break;
        }
    }
    drop(worker);
    let mut store = SqliteStore::open(&cfg.store.path).map_err(|e| e.to_string())?;
    let mut db = ComplianceDb::open(&cfg.compliance.path).map_err(|e| e.to_string())?;
    let report = verify(&mut store, Some(&mut db), &cfg.compliance.output_dir)?;
    if !report.clean() || report.in_outbox != 0 || report.in_compliance_db != 0 {
        return Err(format!("verify:\n{}", report.render()));
    }
    let formats: [&dyn Format; 2] = [
        &pchat_server::compliance::xml::Xml,
        &pchat_server::compliance::jsonl::Jsonl,
    ];
    let output = read_output(&cfg.compliance.output_dir, &formats)?;
    let mut chats: BTreeMap<&str, u32> = BTreeMap::new();
    let mut per_user: BTreeMap<(EventKind, &str), u32> = BTreeMap::new();
    for x in &output {
        if x.event.kind == EventKind::Chat {
            *chats.entry(x.event.content.as_str()).or_default() += 1;
        }
        *per_user
            .entry((x.event.kind, x.event.user.as_str()))
            .or_default() += 1;
    }
    for text in &seen.acked_posts {
        let n = chats.get(text.as_str()).copied().unwrap_or(0);
        if n != 1 {
            return Err(format!(
                "acknowledged post {text:?} appears {n} times in the output"
            ));
        }
    }
    for (text, n) in &chats {
        if *n > 1 || !seen.attempted_posts.iter().any(|t| t == text) {
            return Err(format!(
                "CHAT {text:?} x{n} in the output was never posted once"
            ));
        }
    }
    for (user, acked) in &seen.acked_history {
        let n = per_user
            .get(&(EventKind::Backchat, user.as_str()))
            .copied()
            .unwrap_or(0);
        if n < *acked {
            return Err(format!(
                "{user}: {acked} history reads acknowledged, {n} BACKCHAT events"
            ));
        }
    }
    for user in seen.acked_joins.keys() {
        if !per_user.contains_key(&(EventKind::Join, user.as_str())) {
            return Err(format!("{user}: joins acknowledged, no JOIN event"));
        }
    }
    Ok(())
}

fn fail_with_schedule(s: &Schedule, why: &str) -> String {
    let toml = toml::to_string(s).unwrap_or_else(|e| format!("<{e}>"));
    format!(
        "{why}\n--- replayable schedule (save as FILE, run PCHAT_COMPLIANCE_REPLAY=FILE cargo test -p pchat-sim --test compliance replay -- --ignored) ---\n{toml}"
    )
}

fn base(seed: u64) -> Schedule {
    Schedule {
        seed,
        adapter: if matches!(seed % 2, 0) {
            "xml"
        } else {
            "jsonl"
        }
        .into(),
        one_room_per_file: matches!(seed % 3, 0),
        batch_size: 3,
        users: vec![
            vec![
                Op::Post,
                Op::History,
                Op::Post,
                Op::JoinOther,
                Op::Post,
                Op::Post,
            ],
            vec![
                Op::Post,
                Op::Post,
                Op::History,
                Op::Post,
                Op::Post,
                Op::Post,
            ],
        ],
        halts: Vec::new(),
        adapter_failures: Vec::new(),
        crashes_at_ms: Vec::new(),
        commit_failures: Vec::new(),
        outbox_delete_failures: Vec::new(),
    }
}

/// Crash and restart at every pipeline step (first and second pass of each), for two
/// seeds each: zero missing, zero duplicated.
#[test]
fn crash_at_every_pipeline_step() {
    for point in FaultPoint::ALL {
        for seed in [1u64, 2] {
            let mut s = base(seed);
            s.halts = vec![(point, 1), (point, 2 + seed as u32)];
            match run(&s) {
                Ok(restarts) => assert!(restarts >= 1, "{point:?} seed {seed}: never reached"),
                Err(e) => panic!(
                    "{}",
                    fail_with_schedule(&s, &format!("{point:?} seed {seed}: {e}"))
                ),
            }
        }
    }
}

/// Crashes at simulated times (after actions committed, mid-batch...), adapter and
/// store failures.
#[test]
fn crash_at_random_times_with_adapter_and_store_failures() {
    let mut s = base(3);
    s.crashes_at_ms = vec![40, 95, 300];
    s.adapter_failures = vec![
        (FaultPoint::MidAdapterWrite, 1),
        (FaultPoint::AfterRename, 2),
    ];
    s.commit_failures = vec![3, 9];
    s.outbox_delete_failures = vec![1];
    match run(&s) {
        Ok(restarts) => assert_eq!(restarts, 3),
        Err(e) => panic!("{}", fail_with_schedule(&s, &e)),
    }
}

fn schedule() -> impl Strategy<Value = Schedule> {
    let op = prop_oneof![6 => Just(Op::Post), 2 => Just(Op::History), 1 => Just(Op::JoinOther)];
    let point = proptest::sample::select(FaultPoint::ALL.to_vec());
    let adapter_point =
        proptest::sample::select(vec![FaultPoint::MidAdapterWrite, FaultPoint::AfterRename]);
    (
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
        1u32..5,
        proptest::collection::vec(proptest::collection::vec(op, 1..6), 1..3),
        proptest::collection::vec((point, 1u32..4), 0..3),
        proptest::collection::vec((adapter_point, 1u32..4), 0..2),
        proptest::collection::vec(0u64..400, 0..3),
        proptest::collection::vec(1u32..20, 0..2),
        proptest::collection::vec(1u32..6, 0..2),
    )
        .prop_map(|t| Schedule {
            seed: t.0,
            adapter: if t.1 { "xml" } else { "jsonl" }.into(),
            one_room_per_file: t.2,
            batch_size: t.3,
            users: t.4,
            halts: t.5,
            adapter_failures: t.6,
            crashes_at_ms: t.7,
            commit_failures: t.8,
            outbox_delete_failures: t.9,
        })
}

fn cases() -> u32 {
    std::env::var("PCHAT_COMPLIANCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    /// The oracle over random schedules of joins, posts, history reads, crashes (at
    /// pipeline steps and at random times), adapter failures and store errors.
    #[test]
    fn proptest_random_schedules(s in schedule()) {
        if let Err(e) = run(&s) {
            prop_assert!(false, "{}", fail_with_schedule(&s, &e));
        }
    }
}

/// Replays a schedule printed by a failure:
/// `PCHAT_COMPLIANCE_REPLAY=FILE cargo test -p pchat-sim --test compliance replay -- --ignored`.
#[test]
#[ignore = "replays the schedule file named by PCHAT_COMPLIANCE_REPLAY"]
fn replay() {
    let path = std::env::var("PCHAT_COMPLIANCE_REPLAY").expect("PCHAT_COMPLIANCE_REPLAY=FILE");
    let text = std::fs::read_to_string(PathBuf::from(&path)).expect("schedule file readable");
    let s: Schedule = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    if let Err(e) = run(&s) {
        panic!("{}", fail_with_schedule(&s, &e));
    }
}
