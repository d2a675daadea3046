//! Runs a scenario: in the deterministic simulator (turmoil; the server is the real
//! `pchat-server` code on a simulated host, each client on its own simulated host) or
//! against a live server over real TCP (`--target HOST:PORT`).
//!
//! A driver walks the steps in order and hands each to its client's task; a step fails
//! on the first unmet expectation, and the run stops there with the step's file:line.
//! Same scenario + same seed = byte-identical transcript.

use crate::client::Client;
use crate::scenario::{ActionKind, Scenario, Step};
use crate::steps;
use crate::transcript::Transcript;
use pchat_server::fault::{Faults, StoreFault};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// SIP port of the simulated server.
pub const SIM_SIP_PORT: u16 = 5060;
/// The simulated server's HTTP port (web services, when the scenario has `[http]`).
pub const SIM_HTTP_PORT: u16 = 8080;

/// How a run went.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Scenario name.
    pub name: String,
    /// Seed used.
    pub seed: u64,
    /// Steps that passed.
    pub steps_passed: usize,
    /// Steps in the scenario.
    pub steps_total: usize,
    /// First failure: `file:line:col: step N (action, client): message`, or the first
    /// invariant violated.
    pub failure: Option<String>,
    /// With `keep_going`: every failed step (they do not fail the run; invariants do).
    pub step_failures: Vec<String>,
    /// End-of-run invariants that did not hold (see [`crate::invariants`]).
    pub violations: Vec<String>,
    /// Everything the clients sent and received.
    pub transcript: Transcript,
    /// Simulated (or, live, wall) time the run took.
    pub elapsed: Duration,
    /// With `[compliance] enabled` (simulated runs): every adapter output file at the
    /// end of the run, as `== <file name>` followed by its content, in name order.
    pub compliance_output: Option<String>,
}

impl RunReport {
    /// Whether every step passed (or `keep_going`) and every invariant held.
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.violations.is_empty()
    }
}

type Job = (Step, oneshot::Sender<steps::StepResult>);

/// What the driver reports: steps passed, the first failure, failed steps (keep_going).
type Outcome = (usize, Option<String>, Vec<String>);

/// Per-client seed: distinct per client, fixed per run seed.
fn client_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64 + 1)
}

/// A network or host fault the driver asks the simulation loop to apply (they need
/// `&mut Sim`, which only the loop holds). Applied between two simulation steps.
#[derive(Debug, Clone)]
enum Control {
    /// Hold traffic between the server and these clients (delivered on release).
    Hold(Vec<String>),
    /// Release held traffic.
    Release(Vec<String>),
    /// One-way latency min..max ms.
    Latency(Vec<String>, u64, u64),
    /// Message loss rate.
    Loss(Vec<String>, f64),
    /// Crash the server host.
    Crash,
    /// Restart (bounce) the server host.
    Restart,
}

/// Default link latency of the simulated network, ms (min, max).
const BASE_LATENCY_MS: (u64, u64) = (1, 5);

/// What the driver needs to inject faults in the simulator.
#[derive(Clone)]
struct SimEnv {
    controls: Arc<Mutex<Vec<Control>>>,
    faults: Faults,
    clients: Vec<String>,
    /// Per fault kind: when its latest window ends (overlapping windows extend it).
    until: Arc<Mutex<BTreeMap<String, tokio::time::Instant>>>,
}

impl SimEnv {
    fn push(&self, c: Control) {
        if let Ok(mut q) = self.controls.lock() {
            q.push(c);
        }
    }

    /// Runs `undo` after `ms` unless a later window of the same `kind` still runs.
    fn window(&self, kind: String, ms: u64, undo: impl FnOnce(&SimEnv) + 'static) {
        let end = tokio::time::Instant::now() + Duration::from_millis(ms);
        if let Ok(mut u) = self.until.lock() {
            let e = u.entry(kind.clone()).or_insert(end);
            *e = (*e).max(end);
        }
        let env = self.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(end).await;
            let last = env
                .until
                .lock()
                .map(|u| u.get(&kind).is_none_or(|e| *e <= end))
                .unwrap_or(true);
            if last {
                undo(&env);
            }
        });
    }

    /// Releases held traffic, restores the base latency and stops loss, for every client.
    fn heal_network(&self) {
        let all = self.clients.clone();
        self.push(Control::Release(all.clone()));
        self.push(Control::Latency(
            all.clone(),
            BASE_LATENCY_MS.0,
            BASE_LATENCY_MS.1,
        ));
        self.push(Control::Loss(all, 0.0));
    }

    /// End of the schedule: waits for the open fault windows to close, then heals
    /// everything (network, server up, no forced faults) so that clients can finish.
    async fn heal(&self) {
        let last = self
            .until
            .lock()
            .map(|u| u.values().max().copied())
            .unwrap_or(None);
        if let Some(end) = last {
            tokio::time::sleep_until(end).await;
        }
        self.heal_network();
        self.push(Control::Restart);
        self.faults.set_overload(false);
        self.faults.set_store_fault(None);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// Injects fault `step` (`kind`); returns a summary.
    async fn inject(&self, kind: ActionKind, step: &Step) -> Result<String, String> {
        let mut hosts: Vec<String> = step.hosts.iter().map(|h| h.get_ref().clone()).collect();
        if let Some(c) = &step.client {
            hosts.push(c.get_ref().clone());
        }
        if hosts.is_empty() {
            hosts = self.clients.clone();
        }
        let ms = step.ms;
        let summary = match kind {
            ActionKind::Overload => {
                self.faults.set_overload(true);
                self.window("overload".into(), ms.unwrap_or(0), |e| {
                    e.faults.set_overload(false)
                });
                "INFO answered 503".to_string()
            }
            ActionKind::StoreFail | ActionKind::DiskFull => {
                let fault = match (kind, step.error.as_deref()) {
                    (ActionKind::DiskFull, _) => StoreFault::DiskFull,
                    (_, Some("busy")) => StoreFault::Busy,
                    _ => StoreFault::Io,
                };
                self.faults.set_store_fault(Some(fault));
                self.window("store".into(), ms.unwrap_or(0), |e| {
                    e.faults.set_store_fault(None)
                });
                format!("store fails: {fault:?}")
            }
            ActionKind::Partition => {
                self.push(Control::Hold(hosts.clone()));
                if let Some(ms) = ms {
                    let h = hosts.clone();
                    self.window(format!("partition:{}", h.join(",")), ms, move |e| {
                        e.push(Control::Release(h))
                    });
                }
                format!("server | {}", hosts.join(", "))
            }
            ActionKind::Repair => {
                self.heal_network();
                "network healed".to_string()
            }
            ActionKind::Latency => {
                let min = step.min_ms.unwrap_or(0);
                let max = step.max_ms.unwrap_or(min).max(min);
                self.push(Control::Latency(hosts.clone(), min, max));
                if let Some(ms) = ms {
                    let h = hosts.clone();
                    self.window(format!("latency:{}", h.join(",")), ms, move |e| {
                        e.push(Control::Latency(h, BASE_LATENCY_MS.0, BASE_LATENCY_MS.1))
                    });
                }
                format!("{min}..{max} ms")
            }
            ActionKind::Loss => {
                let rate = step.rate.unwrap_or(0.0);
                self.push(Control::Loss(hosts.clone(), rate));
                if let Some(ms) = ms {
                    let h = hosts.clone();
                    self.window(format!("loss:{}", h.join(",")), ms, move |e| {
                        e.push(Control::Loss(h, 0.0))
                    });
                }
                format!("rate {rate}")
            }
            ActionKind::Crash => {
                self.push(Control::Crash);
                if let Some(ms) = ms {
                    self.window("crash".into(), ms, |e| e.push(Control::Restart));
                }
                "server crashed".to_string()
            }
            ActionKind::Restart => {
                self.push(Control::Restart);
                "server restarted".to_string()
            }
            _ => return Err(format!("`{}` is not a fault", kind.name())),
        };
        // Let the simulation loop apply it before the next step.
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(summary)
    }
}

/// Applies a control to the simulation.
fn apply(sim: &mut turmoil::Sim<'_>, c: Control) {
    match c {
        Control::Hold(hosts) => {
            for h in hosts {
                sim.hold("server", h.as_str());
            }
        }
        Control::Release(hosts) => {
            for h in hosts {
                sim.release("server", h.as_str());
            }
        }
        Control::Latency(hosts, min, max) => {
            for h in hosts {
                sim.set_link_latency("server", h.as_str(), Duration::from_millis(min));
                sim.set_link_max_message_latency("server", h.as_str(), Duration::from_millis(max));
            }
        }
        Control::Loss(hosts, rate) => {
            for h in hosts {
                sim.set_link_fail_rate("server", h.as_str(), rate);
            }
        }
        Control::Crash => {
            if sim.is_host_running("server") {
                sim.crash("server");
            }
        }
        Control::Restart => {
            if !sim.is_host_running("server") {
                sim.bounce("server");
            }
        }
    }
}

fn step_label(i: usize, step: &Step, fault: bool) -> String {
    let kind = step.action.as_ref().map(|a| *a.get_ref());
    let who = step
        .client
        .as_ref()
        .map(|c| c.get_ref().clone())
        .unwrap_or_default();
    let room = step
        .room
        .as_ref()
        .map(|r| format!(" {}", r.get_ref()))
        .unwrap_or_default();
    if fault {
        let ms = step.ms.map(|m| format!(" {m}ms")).unwrap_or_default();
        format!("fault {} ({}{ms})", i + 1, kind.map_or("?", |k| k.name()))
    } else {
        format!(
            "step {} ({} {}{})",
            i + 1,
            who,
            kind.map_or("?", |k| k.name()),
            room
        )
    }
}

/// The driver: feeds steps (and `[[fault]]`s) to client tasks in order.
async fn drive(
    scenario: Arc<Scenario>,
    clients: BTreeMap<String, mpsc::Sender<Job>>,
    transcript: Transcript,
    env: Option<SimEnv>,
) -> Outcome {
    let outcome = drive_steps(&scenario, &clients, &transcript, env.as_ref()).await;
    if let Some(env) = &env {
        if !scenario.file.faults.is_empty()
            || scenario.file.steps.iter().any(|s| {
                s.get_ref()
                    .action
                    .as_ref()
                    .is_some_and(|a| a.get_ref().is_fault())
            })
        {
            env.heal().await;
        }
    }
    outcome
}

async fn drive_steps(
    scenario: &Scenario,
    clients: &BTreeMap<String, mpsc::Sender<Job>>,
    transcript: &Transcript,
    env: Option<&SimEnv>,
) -> Outcome {
    let keep_going = scenario.file.keep_going;
    let mut failures = Vec::new();
    let mut passed = 0;
    for (is_fault, i) in scenario.schedule() {
        let list = if is_fault {
            &scenario.file.faults
        } else {
            &scenario.file.steps
        };
        let Some(step) = list.get(i).map(|s| s.get_ref().clone()) else {
            continue;
        };
        let location = if is_fault {
            scenario.fault_location(i)
        } else {
            scenario.step_location(i)
        };
        let label = step_label(i, &step, is_fault);
        let kind = step.action.as_ref().map(|a| *a.get_ref());
        let outcome = match kind {
            Some(ActionKind::Wait) => {
                transcript.note(&label);
                tokio::time::sleep(Duration::from_millis(step.ms.unwrap_or(0))).await;
                Ok(String::new())
            }
            Some(k) if k.is_fault() => match env {
                Some(env) => {
                    let r = env.inject(k, &step).await;
                    transcript.note(&format!("{label}: {}", r.as_deref().unwrap_or("failed")));
                    r
                }
                None => {
                    transcript.note(&label);
                    Err("fault steps run only in the simulator (not with --target)".into())
                }
            },
            _ => {
                transcript.note(&label);
                run_on_clients(scenario, clients, &step).await
            }
        };
        match outcome {
            Ok(_) if !is_fault => passed += 1,
            Ok(_) => {}
            Err(msg) => {
                let f = format!("{location}: {label}: {msg}");
                if !keep_going {
                    return (passed, Some(f), failures);
                }
                failures.push(f);
            }
        }
    }
    (passed, None, failures)
}

/// Runs `step` (`repeat` times) on its client, or on every client of its template at
/// once; the first error wins.
async fn run_on_clients(
    scenario: &Scenario,
    clients: &BTreeMap<String, mpsc::Sender<Job>>,
    step: &Step,
) -> steps::StepResult {
    let who = step
        .client
        .as_ref()
        .map(|c| c.get_ref().clone())
        .unwrap_or_default();
    let targets = scenario.clients_of(&who);
    let mut last = Ok(String::new());
    // However a client misbehaves, a step ends: 5 tries x 5 s, plus Retry-After waits.
    let limit = Duration::from_secs(120) + Duration::from_millis(step.ms.unwrap_or(0));
    for round in 1..=step.repeat.unwrap_or(1) {
        let mut step = step.clone();
        if let Some(t) = &step.text {
            step.text = Some(t.replace("{i}", &round.to_string()));
        }
        if let Some(m) = &step.msgid {
            step.msgid = Some(m.replace("{i}", &round.to_string()));
        }
        let mut waits = Vec::new();
        for name in &targets {
            let Some(tx) = clients.get(name) else {
                return Err(format!("unknown client {name}"));
            };
            let (rtx, rrx) = oneshot::channel();
            if tx.send((step.clone(), rtx)).await.is_err() {
                return Err(format!("{name}: client task ended"));
            }
            waits.push(rrx);
        }
        for w in waits {
            let r = match tokio::time::timeout(limit, w).await {
                Ok(r) => r.unwrap_or_else(|_| Err("client task ended".into())),
                Err(_) => Err(format!("no outcome within {limit:?} (client stuck)")),
            };
            // The first error wins; otherwise the last summary.
            if last.is_ok() {
                last = r;
            }
        }
        last.as_ref().map_err(Clone::clone)?;
    }
    last
}

/// What a client task remembers to sign in again after its connection died
/// (`keep_going`): whether it had a dialog, and the rooms (URIs) it had joined.
#[derive(Default)]
struct Session {
    had_dialog: bool,
    rooms: BTreeSet<String>,
}

impl Session {
    fn learn(&mut self, client: &Client, step: &Step) {
        self.had_dialog = client.dialog.is_some();
        let kind = step.action.as_ref().map(|a| *a.get_ref());
        let uri = |r: &str| crate::steps::room_uri_of(&client.domain, r);
        match kind {
            Some(ActionKind::Join) => {
                if let Some(r) = &step.room {
                    self.rooms.insert(uri(r.get_ref()));
                }
            }
            Some(ActionKind::Part) => {
                if let Some(r) = &step.room {
                    self.rooms.remove(&uri(r.get_ref()));
                }
            }
            Some(ActionKind::Bjoin | ActionKind::SignIn) => {
                for r in &step.rooms {
                    self.rooms.insert(uri(r.get_ref()));
                }
            }
            _ => {}
        }
    }

    /// INVITE (new Call-ID) and join the rooms again.
    async fn restore(&self, client: &mut Client) {
        if !self.had_dialog {
            return;
        }
        let pool = client.pool_uri.clone();
        if client.invite(&pool).await.is_err() {
            return;
        }
        for room in &self.rooms {
            let chan = pchat_server::xccos::ChanRef::Uri(room.clone());
            let _ = client
                .command(pchat_server::xccos::CmdKind::Join { chan })
                .await;
        }
    }
}

/// A client's task: connects with `connect` (again after a `disconnect` step, or, with
/// `keep_going`, after its connection died) and runs the jobs it is handed.
async fn client_task<S, F, Fut>(
    name: String,
    (uri, password): (String, Option<String>),
    seed: u64,
    transcript: Transcript,
    mut jobs: mpsc::Receiver<Job>,
    connect: F,
    keep_going: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<(S, String)>>,
{
    let mut client: Option<Client> = None;
    let mut connection = 0u64;
    let mut session = Session::default();
    while let Some((step, reply)) = jobs.recv().await {
        if let Some(ms) = step.think_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if step.action.as_ref().map(|a| *a.get_ref()) == Some(ActionKind::Disconnect) {
            client = None;
            session = Session::default();
            let _ = reply.send(Ok("disconnected".into()));
            continue;
        }
        // Under faults a post carrying a client message id is sent once more on a
        // fresh connection when its answer never came: the server stores it once
        // whichever copy arrives (grpchat msgid, docs/protocol.md).
        let resend = keep_going
            && step.msgid.is_some()
            && step.action.as_ref().map(|a| *a.get_ref()) == Some(ActionKind::Post);
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            if keep_going {
                if let Some(c) = client.as_mut() {
                    if c.is_closed().await {
                        client = None;
                    }
                }
            }
            if client.is_none() {
                let connected = tokio::time::timeout(crate::client::DEFAULT_TIMEOUT, connect())
                    .await
                    .unwrap_or_else(|_| {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "connect timed out",
                        ))
                    });
                match connected {
                    Ok((stream, local)) => {
                        connection += 1;
                        let seed = seed.wrapping_add(connection.wrapping_mul(0x1000_0000_01B3));
                        let mut c =
                            Client::start(&name, &uri, stream, &local, seed, transcript.clone());
                        c.password = password.clone();
                        if keep_going {
                            session.restore(&mut c).await;
                        }
                        client = Some(c);
                    }
                    Err(e) => break Err(format!("{name}: cannot connect: {e}")),
                }
            }
            let Some(c) = client.as_mut() else {
                break Err(format!("{name}: not connected"));
            };
            let result = steps::exec(c, &step).await;
            if result.is_ok() {
                session.learn(c, &step);
            } else if keep_going
                && result
                    .as_ref()
                    .is_err_and(|m| m.contains(" within ") || m.contains("closed"))
            {
                // No answer: the connection is stalled (lost segments); start afresh.
                client = None;
                if resend && attempts < 2 {
                    continue;
                }
            }
            break result;
        };
        let _ = reply.send(result);
    }
}

/// Runs `scenario` in the simulator with `seed`.
pub fn run_sim(scenario: &Scenario, seed: u64) -> RunReport {
    run_sim_with(scenario, seed, &SimOptions::default())
}

/// Extra outputs of a simulated run.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Check the invariants even if the scenario does not ask for them.
    pub invariants: bool,
}

/// Runs `scenario` in the simulator with `seed` and `opts`.
pub fn run_sim_with(scenario: &Scenario, seed: u64, opts: &SimOptions) -> RunReport {
    let scenario = Arc::new(scenario.clone());
    let transcript = Transcript::default();
    let outcome: Arc<Mutex<Option<Outcome>>> = Arc::default();
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(3600))
        .tick_duration(Duration::from_millis(1))
        .tcp_capacity(4096)
        .min_message_latency(Duration::from_millis(BASE_LATENCY_MS.0))
        .max_message_latency(Duration::from_millis(BASE_LATENCY_MS.1))
        .build();
    // The store file outlives server crashes (it is the server's disk). On Linux it goes
    // to /dev/shm when there is one: fsync there costs nothing, and runs are many.
    let shm = std::path::Path::new("/dev/shm");
    let store_dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
    } else {
        tempfile::tempdir()
    }
    .ok();
    let store_path = store_dir.as_ref().map_or_else(
        || std::path::PathBuf::from(":memory:"),
        |d| d.path().join("pchat.db"),
    );
    let mut cfg = scenario.server_config();
    cfg.store.path = store_path.clone();
    let faults = Faults::default();
    match scenario
        .file
        .planted_bug
        .as_ref()
        .map(|b| b.get_ref().as_str())
    {
        Some("no-retry-dedup") => faults.disable_retry_dedup(true),
        Some("no-crash-cleanup") => faults.disable_crash_cleanup(true),
        _ => {}
    }
    let server_faults = faults.clone();
    if let Some(d) = store_dir.as_ref() {
        cfg.compliance.path = d.path().join("mgccomp.db");
        cfg.compliance.output_dir = d.path().join("compliance");
        if let Some(h) = cfg.http.as_mut() {
            h.listen = format!("server:{SIM_HTTP_PORT}");
            h.file_store = d.path().join("files");
            h.compliance_file_store = d.path().join("compliance-files");
        }
    }
    let with_http = cfg.http.is_some();
    // With compliance on: the compliance database and the adapter's output directory.
    let compliance_files = cfg.compliance.enabled.then(|| {
        (
            cfg.compliance.path.clone(),
            cfg.compliance.output_dir.clone(),
        )
    });
    // Each start of the server host (the first, and every restart after a crash) is a
    // new incarnation: like a real process it gets fresh identifiers (its own seed) and
    // reads the clock where simulated time is, instead of replaying its first life.
    let incarnation = Arc::new(std::sync::atomic::AtomicU64::new(0));
    sim.host("server", move || {
        let cfg = cfg.clone();
        let faults = server_faults.clone();
        let life = incarnation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let seed = seed ^ life.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        async move {
            let listener =
                turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), SIM_SIP_PORT))
                    .await?;
            let local = SocketAddr::new(turmoil::lookup("server"), SIM_SIP_PORT).to_string();
            let since = turmoil::sim_elapsed().unwrap_or_default().as_millis() as i64;
            let clock = Arc::new(pchat_server::clock::TokioClock::starting_at(
                pchat_server::clock::SIM_EPOCH_MS + since,
            ));
            let http = match cfg.http.is_some() {
                true => Some(crate::sim_net::SimListener(
                    turmoil::net::TcpListener::bind((
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        SIM_HTTP_PORT,
                    ))
                    .await?,
                )),
                false => None,
            };
            let worker = match pchat_server::build_worker(&cfg, None) {
                Ok(w) => w,
                Err(e) => {
                    tracing::info!("simulated compliance worker did not start: {e}");
                    return Ok(());
                }
            };
            let core = match pchat_server::build_core_with_faults(
                cfg,
                clock,
                seed,
                &local,
                faults.clone(),
            ) {
                Ok(core) => core,
                Err(e) => {
                    // Like the binary: cannot open the store, exit. A `restart` (or
                    // the end of the run) starts it again.
                    tracing::info!("simulated server did not start: {e}");
                    return Ok(());
                }
            };
            pchat_server::host::serve_full(
                crate::sim_net::SimListener(listener),
                http,
                core,
                worker,
                std::future::pending(),
                faults,
            )
            .await?;
            Ok(())
        }
    });
    let keep_going = scenario.file.keep_going;
    let mut senders = BTreeMap::new();
    for (i, spec) in scenario.file.clients.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Job>(1);
        senders.insert(spec.name.clone(), tx);
        let (name, uri, t) = (spec.name.clone(), spec.uri.clone(), transcript.clone());
        let password = spec.password.clone();
        let rx = Arc::new(Mutex::new(Some(rx)));
        sim.client(spec.name.as_str(), async move {
            let Some(rx) = rx.lock().ok().and_then(|mut r| r.take()) else {
                return Ok(());
            };
            let task = client_task(
                name,
                (uri, password),
                client_seed(seed, i),
                t,
                rx,
                || async {
                    let s = turmoil::net::TcpStream::connect(("server", SIM_SIP_PORT)).await?;
                    let local = s.local_addr()?.to_string();
                    Ok((s, local))
                },
                keep_going,
            );
            if with_http {
                let connect: crate::http_steps::HttpConnector = Arc::new(|| {
                    Box::pin(async {
                        let s = turmoil::net::TcpStream::connect(("server", SIM_HTTP_PORT)).await?;
                        let io: Box<dyn crate::http_steps::Io> = Box::new(s);
                        Ok((io, format!("server:{SIM_HTTP_PORT}")))
                    })
                });
                crate::http_steps::HTTP_CONNECT.scope(connect, task).await;
            } else {
                task.await;
            }
            Ok(())
        });
    }
    let controls: Arc<Mutex<Vec<Control>>> = Arc::default();
    let env = SimEnv {
        controls: controls.clone(),
        faults: faults.clone(),
        clients: scenario
            .file
            .clients
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        until: Arc::default(),
    };
    let (sc, t, out) = (scenario.clone(), transcript.clone(), outcome.clone());
    sim.client("qa-driver", async move {
        let result = drive(sc, senders, t, Some(env)).await;
        if let Ok(mut o) = out.lock() {
            *o = Some(result);
        }
        Ok(())
    });
    let run = loop {
        match sim.step() {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(e) => break Err(e),
        }
        let pending: Vec<Control> = controls
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        for c in pending {
            apply(&mut sim, c);
        }
    };
    let elapsed = sim.elapsed();
    drop(sim);
    let (steps_passed, mut failure, step_failures) = outcome
        .lock()
        .ok()
        .and_then(|mut o| o.take())
        .unwrap_or((0, Some("the driver did not finish".into()), Vec::new()));
    if let (Err(e), None) = (run, &failure) {
        failure = Some(format!(
            "{}: simulation failed: {e}",
            scenario.path.display()
        ));
    }
    let compliance_output = compliance_files
        .as_ref()
        .map(|(_, dir)| read_compliance_output(dir));
    let violations = if scenario.file.invariants || opts.invariants {
        let files = crate::invariants::RunFiles {
            store: &store_path,
            compliance: compliance_files
                .as_ref()
                .map(|(db, dir)| (db.as_path(), dir.as_path())),
        };
        crate::invariants::check(&scenario, &transcript, &files)
    } else {
        Vec::new()
    };
    drop(store_dir);
    RunReport {
        name: scenario.name(),
        seed,
        steps_passed,
        steps_total: scenario.file.steps.len(),
        failure,
        step_failures,
        violations,
        transcript,
        elapsed,
        compliance_output,
    }
}

/// Every adapter output file in `dir` (temp files excluded), `== name` then content.
fn read_compliance_output(dir: &std::path::Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(pchat_server::compliance::adapter::FILE_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for n in names {
        let text = std::fs::read_to_string(dir.join(&n)).unwrap_or_else(|e| format!("<{e}>"));
        out.push_str(&format!("== {n}\n{text}"));
    }
    out
}

/// A per-run nonce for live runs. Call-IDs must be globally unique (RFC 3261 8.1.1.4):
/// a live server keeps state between runs (and may still hold the dialogs of the
/// previous run while it processes their connections closing), so the identifiers of a
/// live run must not repeat another run's, whatever the seed. Simulated runs never use
/// this: there the seed alone decides every identifier.
fn live_nonce() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
}

/// Runs `scenario` against a live server at `target` (`HOST:PORT`) over real TCP.
/// The server must have the scenario's rooms (the embedded default has the demo rooms).
pub fn run_live(scenario: &Scenario, target: &str, seed: u64) -> RunReport {
    run_live_with(scenario, target, None, seed)
}

/// [`run_live`], with the server's web services at `http` (`HOST:PORT`, its `[http]
/// listen`) for `http` steps; without it those steps fail saying so.
pub fn run_live_with(
    scenario: &Scenario,
    target: &str,
    http: Option<&str>,
    seed: u64,
) -> RunReport {
    let scenario = Arc::new(scenario.clone());
    let transcript = Transcript::default();
    let started = std::time::Instant::now();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return RunReport {
                name: scenario.name(),
                seed,
                steps_passed: 0,
                steps_total: scenario.file.steps.len(),
                failure: Some(format!("cannot start a runtime: {e}")),
                step_failures: Vec::new(),
                violations: Vec::new(),
                transcript,
                elapsed: Duration::ZERO,
                compliance_output: None,
            }
        }
    };
    let keep_going = scenario.file.keep_going;
    let (steps_passed, failure, step_failures) = rt.block_on(async {
        let mut senders = BTreeMap::new();
        for (i, spec) in scenario.file.clients.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Job>(1);
            senders.insert(spec.name.clone(), tx);
            let target = target.to_string();
            let task = client_task(
                spec.name.clone(),
                (spec.uri.clone(), spec.password.clone()),
                client_seed(seed ^ live_nonce(), i),
                transcript.clone(),
                rx,
                move || {
                    let target = target.clone();
                    async move {
                        let s = tokio::net::TcpStream::connect(&target).await?;
                        s.set_nodelay(true)?;
                        let local = s.local_addr()?.to_string();
                        Ok((s, local))
                    }
                },
                keep_going,
            );
            match http {
                Some(h) => {
                    let h = h.to_string();
                    let connect: crate::http_steps::HttpConnector = Arc::new(move || {
                        let h = h.clone();
                        Box::pin(async move {
                            let s = tokio::net::TcpStream::connect(&h).await?;
                            let io: Box<dyn crate::http_steps::Io> = Box::new(s);
                            Ok((io, h))
                        })
                    });
                    tokio::spawn(crate::http_steps::HTTP_CONNECT.scope(connect, task));
                }
                None => {
                    tokio::spawn(task);
                }
            }
        }
        drive(scenario.clone(), senders, transcript.clone(), None).await
    });
    RunReport {
        name: scenario.name(),
        seed,
        steps_passed,
        steps_total: scenario.file.steps.len(),
        failure,
        step_failures,
        violations: Vec::new(),
        transcript,
        elapsed: started.elapsed(),
        compliance_output: None,
    }
}
