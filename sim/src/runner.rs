//! Runs a scenario: in the deterministic simulator (turmoil; the server is the real
//! `pchat-server` code on a simulated host, each client on its own simulated host) or
//! against a live server over real TCP (`--target HOST:PORT`).
//!
//! A driver walks the steps in order and hands each to its client's task; a step fails
//! on the first unmet expectation, and the run stops there with the step's file:line.
//! Same scenario + same seed = byte-identical transcript.

use crate::client::Client;
use crate::scenario::{ActionKind, Scenario, Step};
use crate::step::{Action, StoreError};
use crate::steps;
use crate::transcript::Transcript;
use pchat_server::fault::{Faults, StoreFault};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use crate::sim_setup::{SIM_HTTP_PORT, SIM_SIP_PORT};

/// How a run went.
#[derive(Debug, Clone, Default)]
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
    /// Steps that failed while the run went on (`keep_going`): each fails the run.
    pub step_failures: Vec<String>,
    /// Steps with `allow_fail = true` that failed: reported, but the run still passes.
    pub allowed_failures: Vec<String>,
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
    /// The report of a run of `scenario` with `seed` that failed before its first step
    /// (`failure` says why): no step passed, nothing recorded.
    pub fn not_started(scenario: &Scenario, seed: u64, failure: String) -> RunReport {
        RunReport {
            name: scenario.name(),
            seed,
            steps_total: scenario.file.steps.len(),
            failure: Some(failure),
            ..RunReport::default()
        }
    }

    /// The report of a run of `scenario` with `seed` from the driver's `outcome`, with
    /// the end-of-run `violations`; no compliance output.
    fn from_outcome(
        scenario: &Scenario,
        seed: u64,
        outcome: Outcome,
        violations: Vec<String>,
        transcript: Transcript,
        elapsed: Duration,
    ) -> RunReport {
        let (steps_passed, failure, step_failures, allowed_failures) = outcome;
        RunReport {
            name: scenario.name(),
            seed,
            steps_passed,
            steps_total: scenario.file.steps.len(),
            failure,
            step_failures,
            allowed_failures,
            violations,
            transcript,
            elapsed,
            compliance_output: None,
        }
    }

    /// Whether every step passed (or failed with `allow_fail = true`) and every
    /// invariant held.
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.violations.is_empty() && self.step_failures.is_empty()
    }
}

/// A step for one client task and where its outcome goes.
type Job = (Step, oneshot::Sender<steps::StepResult>);

/// What the driver reports: steps passed, the first failure, failed steps (keep_going),
/// failed steps that were allowed to fail.
type Outcome = (usize, Option<String>, Vec<String>, Vec<String>);

/// Per-client seed: distinct per client, fixed per run seed.
fn client_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64 + 1)
}

/// A network or host fault the driver asks the simulation loop to apply (they need
/// `&mut Sim`, which only the loop holds). Applied between two simulation steps.
#[derive(Debug, Clone)]
enum Control {
    /// Hold traffic between these server hosts and these clients (delivered on release).
    Hold(Vec<String>, Vec<String>),
    /// Release held traffic.
    Release(Vec<String>, Vec<String>),
    /// One-way latency min..max ms.
    Latency(Vec<String>, u64, u64),
    /// Message loss rate.
    Loss(Vec<String>, f64),
    /// Crash these server hosts.
    Crash(Vec<String>),
    /// Restart (bounce) these server hosts when they are down.
    Restart(Vec<String>),
}

/// Default link latency of the simulated network, ms (min, max).
const BASE_LATENCY_MS: (u64, u64) = (1, 5);

/// What the driver needs to inject faults in the simulator.
#[derive(Clone)]
struct SimEnv {
    controls: Arc<Mutex<Vec<Control>>>,
    faults: Faults,
    /// The client hosts' turmoil names (`sim_hosts`): a network fault without
    /// `hosts` applies to all of them.
    clients: Vec<String>,
    /// Per fault kind: when its latest window ends (overlapping windows extend it).
    until: Arc<Mutex<BTreeMap<String, tokio::time::Instant>>>,
    /// The server hosts: `server`, or a pool's members (`member1`..).
    servers: Vec<String>,
    /// With `[pool]`: the member host each client is connected to (set at connect).
    placement: Placement,
}

/// With `[pool]`: client name -> the member host it last connected to.
type Placement = Arc<Mutex<BTreeMap<String, String>>>;

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
            crate::sim_clock::sleep_until(end).await;
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

    /// Whether the run is a pool's (`[pool]`).
    fn pooled(&self) -> bool {
        self.servers.first().is_some_and(|s| s != "server")
    }

    /// The server hosts a fault step acts on: the member it names, else all.
    fn servers_of(&self, step: &Step) -> Vec<String> {
        match step.member() {
            Some(m) if self.pooled() => (m as usize)
                .checked_sub(1)
                .and_then(|i| self.servers.get(i))
                .cloned()
                .into_iter()
                .collect(),
            _ => self.servers.clone(),
        }
    }

    /// `member2 crashed: user2 user6` (the clients connected to it), or `server crashed`.
    fn crash_summary(&self, hosts: &[String]) -> String {
        if !self.pooled() {
            return "server crashed".to_string();
        }
        let placement = self.placement.lock().map(|p| p.clone()).unwrap_or_default();
        let on = |h: &String| {
            let clients: Vec<&str> = (placement.iter())
                .filter(|(_, m)| *m == h)
                .map(|(c, _)| c.as_str())
                .collect();
            format!("{h} crashed: {}", clients.join(" "))
        };
        hosts.iter().map(on).collect::<Vec<_>>().join("; ")
    }

    /// Releases held traffic, restores the base latency and stops loss, for every client.
    fn heal_network(&self) {
        let all = self.clients.clone();
        self.push(Control::Release(self.servers.clone(), all.clone()));
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
            crate::sim_clock::sleep_until(end).await;
        }
        self.heal_network();
        self.push(Control::Restart(self.servers.clone()));
        self.faults.set_overload(false);
        self.faults.set_store_fault(None);
        crate::sim_clock::sleep(Duration::from_millis(1)).await;
    }

    /// Injects fault `step` (`kind`); returns a summary.
    async fn inject(&self, kind: ActionKind, step: &Step) -> Result<String, String> {
        let mut hosts: Vec<String> = step.hosts().iter().map(|h| h.get_ref().clone()).collect();
        if let Some(c) = &step.client {
            hosts.push(c.get_ref().clone());
        }
        if hosts.is_empty() {
            hosts = self.clients.clone();
        }
        let ms = step.ms();
        let summary = match kind {
            ActionKind::Overload => {
                self.faults.set_overload(true);
                self.window("overload".into(), ms.unwrap_or(0), |e| {
                    e.faults.set_overload(false)
                });
                "INFO answered 503".to_string()
            }
            ActionKind::StoreFail | ActionKind::DiskFull => self.inject_store_fault(step, ms),
            ActionKind::Partition | ActionKind::Latency | ActionKind::Loss => {
                self.inject_link_fault(kind, step, hosts, ms)
            }
            ActionKind::Repair => {
                self.heal_network();
                "network healed".to_string()
            }
            ActionKind::Crash | ActionKind::Restart => self.inject_server_fault(kind, step, ms),
            _ => return Err(format!("`{}` is not a fault", kind.name())),
        };
        // Let the simulation loop apply it before the next step.
        crate::sim_clock::sleep(Duration::from_millis(1)).await;
        Ok(summary)
    }

    /// `store_fail` / `disk_full`: the store fails for `ms` (0: until repaired).
    fn inject_store_fault(&self, step: &Step, ms: Option<u64>) -> String {
        let fault = match step.action.get_ref() {
            Action::DiskFull { .. } => StoreFault::DiskFull,
            Action::StoreFail {
                error: Some(StoreError::Busy),
                ..
            } => StoreFault::Busy,
            _ => StoreFault::Io,
        };
        self.faults.set_store_fault(Some(fault));
        self.window("store".into(), ms.unwrap_or(0), |e| {
            e.faults.set_store_fault(None)
        });
        format!("store fails: {fault:?}")
    }

    /// `partition` / `latency` / `loss` on the links of `hosts`, for `ms` when given.
    fn inject_link_fault(
        &self,
        kind: ActionKind,
        step: &Step,
        hosts: Vec<String>,
        ms: Option<u64>,
    ) -> String {
        let (control, undo, key, summary) = match (kind, step.action.get_ref()) {
            (ActionKind::Partition, _) => {
                let servers = self.servers_of(step);
                let side = servers.join(", ");
                let summary = format!("{side} | {}", hosts.join(", "));
                let key = format!("partition:{side}:{}", hosts.join(","));
                (
                    Control::Hold(servers.clone(), hosts.clone()),
                    Control::Release(servers, hosts),
                    key,
                    summary,
                )
            }
            (ActionKind::Latency, action) => {
                let (min, max) = match action {
                    Action::Latency { min_ms, max_ms, .. } => {
                        (*min_ms, max_ms.unwrap_or(*min_ms).max(*min_ms))
                    }
                    _ => (0, 0),
                };
                let key = format!("latency:{}", hosts.join(","));
                (
                    Control::Latency(hosts.clone(), min, max),
                    Control::Latency(hosts, BASE_LATENCY_MS.0, BASE_LATENCY_MS.1),
                    key,
                    format!("{min}..{max} ms"),
                )
            }
            (_, action) => {
                let rate = match action {
                    Action::Loss { rate, .. } => *rate,
                    _ => 0.0,
                };
                let key = format!("loss:{}", hosts.join(","));
                (
                    Control::Loss(hosts.clone(), rate),
                    Control::Loss(hosts, 0.0),
                    key,
                    format!("rate {rate}"),
                )
            }
        };
        self.push(control);
        if let Some(ms) = ms {
            self.window(key, ms, move |e| e.push(undo));
        }
        summary
    }

    /// `crash` (restarted after `ms` when given) / `restart` of the step's servers.
    fn inject_server_fault(&self, kind: ActionKind, step: &Step, ms: Option<u64>) -> String {
        let servers = self.servers_of(step);
        if kind == ActionKind::Restart {
            self.push(Control::Restart(servers.clone()));
            return match self.pooled() {
                true => format!("{} restarted", servers.join(", ")),
                false => "server restarted".to_string(),
            };
        }
        self.push(Control::Crash(servers.clone()));
        let summary = self.crash_summary(&servers);
        if let Some(ms) = ms {
            let key = format!("crash:{}", servers.join(","));
            self.window(key, ms, |e| e.push(Control::Restart(servers)));
        }
        summary
    }
}

/// Applies a control to the simulation.
/// Applies a control to the simulation; `servers` are the run's server hosts (for
/// the controls on every link).
fn apply(sim: &mut turmoil::Sim<'_>, servers: &[String], c: Control) {
    let pairs = |hosts: &[String]| {
        let pairs: Vec<(String, String)> = (servers.iter())
            .flat_map(|s| hosts.iter().map(move |h| (s.clone(), h.clone())))
            .collect();
        pairs
    };
    match c {
        Control::Hold(servers, hosts) => {
            for s in &servers {
                for h in &hosts {
                    sim.hold(s.as_str(), h.as_str());
                }
            }
        }
        Control::Release(servers, hosts) => {
            for s in &servers {
                for h in &hosts {
                    sim.release(s.as_str(), h.as_str());
                }
            }
        }
        Control::Latency(hosts, min, max) => {
            for (s, h) in pairs(&hosts) {
                sim.set_link_latency(s.as_str(), h.as_str(), Duration::from_millis(min));
                sim.set_link_max_message_latency(
                    s.as_str(),
                    h.as_str(),
                    Duration::from_millis(max),
                );
            }
        }
        Control::Loss(hosts, rate) => {
            for (s, h) in pairs(&hosts) {
                sim.set_link_fail_rate(s.as_str(), h.as_str(), rate);
            }
        }
        Control::Crash(servers) => {
            for s in servers {
                if sim.is_host_running(s.as_str()) {
                    sim.crash(s.as_str());
                }
            }
        }
        Control::Restart(servers) => {
            for s in servers {
                if !sim.is_host_running(s.as_str()) {
                    sim.bounce(s.as_str());
                }
            }
        }
    }
}

/// `step N (who action room)`: `who` is the client, or for a template (`u{n}`) the
/// clients it stands for (`u1..u50`), so no `{n}` is left in a label.
fn step_label(scenario: &Scenario, i: usize, step: &Step, fault: bool) -> String {
    let kind = step.kind();
    let who = step.client_name();
    let who = match scenario.templates.get(&who).map(Vec::as_slice) {
        Some([one]) => one.clone(),
        Some([first, .., last]) => format!("{first}..{last}"),
        _ => who,
    };
    let room = step
        .room()
        .name
        .map(|r| format!(" {}", r.get_ref()))
        .unwrap_or_default();
    if fault {
        let ms = step.ms().map(|m| format!(" {m}ms")).unwrap_or_default();
        format!("fault {} ({}{ms})", i + 1, kind.name())
    } else {
        format!("step {} ({} {}{})", i + 1, who, kind.name(), room)
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
            || scenario
                .file
                .steps
                .iter()
                .any(|s| s.get_ref().kind().is_fault())
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
    let mut allowed = Vec::new();
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
        let label = step_label(scenario, i, &step, is_fault);
        let kind = step.kind();
        let outcome = match kind {
            ActionKind::Wait => {
                transcript.note(&label);
                crate::sim_clock::sleep(Duration::from_millis(step.ms().unwrap_or(0))).await;
                Ok(String::new())
            }
            k if k.is_fault() => match env {
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
                if step.allow_fail {
                    allowed.push(f);
                } else if !keep_going {
                    return (passed, Some(f), failures, allowed);
                } else {
                    failures.push(f);
                }
            }
        }
    }
    (passed, None, failures, allowed)
}

/// Runs `step` (`repeat` times) on its client, or on every client of its template at
/// once; the first error wins.
async fn run_on_clients(
    scenario: &Scenario,
    clients: &BTreeMap<String, mpsc::Sender<Job>>,
    step: &Step,
) -> steps::StepResult {
    let who = step.client_name();
    let targets = scenario.clients_of(&who);
    let is_template = scenario.templates.contains_key(&who);
    let mut last = Ok(String::new());
    // However a client misbehaves, a step ends: 5 tries x 5 s, plus Retry-After waits.
    let timeouts = Duration::from_millis(step.timeout_ms.unwrap_or(0).saturating_mul(10));
    let limit = Duration::from_secs(120) + Duration::from_millis(step.ms().unwrap_or(0)) + timeouts;
    for round in 1..=step.repeat.unwrap_or(1) {
        let mut waits = Vec::new();
        for name in &targets {
            let Some(tx) = clients.get(name) else {
                return Err(format!("unknown client {name}"));
            };
            let (rtx, rrx) = oneshot::channel();
            let n = scenario.template_number(name);
            // CSV rows: the client's number in a template's step, else the round.
            let row_n = if is_template { n.as_str() } else { "" };
            let step = scenario.with_data(step.substituted(round, &n), round, row_n);
            if tx.send((step, rtx)).await.is_err() {
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
        let uri = |r: &str| crate::steps::room_uri_of(&client.domain, r);
        match step.kind() {
            ActionKind::Join => {
                if let Some(r) = step.room().name {
                    self.rooms.insert(uri(r.get_ref()));
                }
            }
            ActionKind::Part => {
                if let Some(r) = step.room().name {
                    self.rooms.remove(&uri(r.get_ref()));
                }
            }
            ActionKind::Bjoin | ActionKind::SignIn => {
                for r in step.rooms() {
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
                .command(pchat_server::cmd::CmdKind::Join(pchat_server::cmd::Join {
                    chan,
                }))
                .await;
        }
    }
}

/// What a client needs to open a connection: its identity, the seed of the next
/// connection, the transcript and the SIP Digest state its connections share.
struct Dialer {
    name: String,
    user: User,
    seed: u64,
    transcript: Transcript,
    /// Connections opened so far.
    connection: u64,
    /// SIP Digest state shared by this client's connections (a new connection answers
    /// the last challenge at once; the raw placeholder `{authorization}`).
    digest: Arc<Mutex<crate::client::DigestCache>>,
}

impl Dialer {
    /// Connects with `connect` (within the client's default timeout) and starts a
    /// client on the stream; with `restore`, the `session` it had is restored.
    async fn dial<S, F, Fut>(
        &mut self,
        connect: &F,
        restore: Option<&Session>,
    ) -> Result<Client, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::io::Result<(S, String)>>,
    {
        let name = &self.name;
        let (stream, local) = tokio::time::timeout(crate::client::DEFAULT_TIMEOUT, connect())
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })
            .map_err(|e| format!("{name}: cannot connect: {e}"))?;
        self.connection += 1;
        let seed = (self.seed).wrapping_add(self.connection.wrapping_mul(0x1000_0000_01B3));
        let (uri, password, tls) = &self.user;
        let mut c = Client::start(name, uri, stream, &local, seed, self.transcript.clone());
        c.password = password.clone();
        c.digest = self.digest.clone();
        if *tls {
            c.transport = "TLS";
        }
        if let Some(session) = restore {
            session.restore(&mut c).await;
        }
        Ok(c)
    }
}

/// A client's task: connects with `connect` (again after a `disconnect` step, or, with
/// `keep_going`, after its connection died) and runs the jobs it is handed.
async fn client_task<S, F, Fut>(
    name: String,
    user: User,
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
    let mut session = Session::default();
    let mut dialer = Dialer {
        name,
        user,
        seed,
        transcript,
        connection: 0,
        digest: Arc::default(),
    };
    while let Some((step, reply)) = jobs.recv().await {
        if let Some(ms) = step.think_ms {
            crate::sim_clock::sleep(Duration::from_millis(ms)).await;
        }
        if step.kind() == ActionKind::Disconnect {
            client = None;
            session = Session::default();
            let _ = reply.send(Ok("disconnected".into()));
            continue;
        }
        // Under faults a post carrying a client message id is sent once more on a
        // fresh connection when its answer never came: the server stores it once
        // whichever copy arrives (grpchat msgid, docs/protocol.md).
        let resend = keep_going && step.has_msgid();
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
                match dialer.dial(&connect, keep_going.then_some(&session)).await {
                    Ok(c) => client = Some(c),
                    Err(e) => break Err(e),
                }
            }
            let Some(c) = client.as_mut() else {
                break Err(format!("{}: not connected", dialer.name));
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
    run_sim_observed(scenario, seed, opts, &|_| {})
}

/// [`run_sim_with`], calling `progress` with the simulated and wall time so far about
/// every 250 ms of wall time while the run goes on (for a progress bar).
pub fn run_sim_observed(
    scenario: &Scenario,
    seed: u64,
    opts: &SimOptions,
    progress: &dyn Fn(crate::sim_setup::Progress),
) -> RunReport {
    use crate::sim_setup as setup;
    let scenario = Arc::new(scenario.clone());
    let transcript = Transcript::default();
    let disk = setup::ServerDisk::new(&scenario);
    let faults = setup::planted_faults(&scenario);
    let mut sim = setup::build_sim(seed, BASE_LATENCY_MS);
    let tls = sim_tls_of(&scenario);
    let members = scenario.pool_members();
    match members.is_empty() {
        true => setup::add_server(
            &mut sim,
            disk.config.clone(),
            faults.clone(),
            seed,
            tls.clone(),
        ),
        false => setup::add_members(&mut sim, &members, &disk.config, &faults, seed, tls.clone()),
    }
    let servers = match members.is_empty() {
        true => vec!["server".to_string()],
        false => members,
    };
    let placement = Placement::default();
    let plan = crate::sim_hosts::HostPlan::of(&scenario);
    let ctx = ClientContext {
        seed,
        transcript: transcript.clone(),
        keep_going: scenario.file.keep_going,
        with_http: disk.config.http.is_some(),
        tls,
        servers: servers.clone(),
        placement: placement.clone(),
    };
    let specs: Vec<(String, User, usize)> = (scenario.file.clients.iter().enumerate())
        .map(|(i, c)| {
            let user = (c.uri.clone(), c.password.clone(), c.tls);
            (c.name.clone(), user, scenario.member_of(i))
        })
        .collect();
    let start: setup::ClientStarter<Job> = std::rc::Rc::new(move |i, rx| {
        let (name, user, member) = specs.get(i).cloned().unwrap_or_default();
        Box::pin(sim_client((i, member), name, user, rx, ctx.clone()))
    });
    let senders = setup::add_clients(&mut sim, &scenario, &plan, &start);
    let controls: Arc<Mutex<Vec<Control>>> = Arc::default();
    let env = SimEnv {
        controls: controls.clone(),
        faults,
        clients: plan.host_names(),
        until: Arc::default(),
        servers: servers.clone(),
        placement,
    };
    let outcome: Arc<Mutex<Option<Outcome>>> = Arc::default();
    let (sc, t, out) = (scenario.clone(), transcript.clone(), outcome.clone());
    sim.client("qa-driver", async move {
        let result = drive(sc, senders, t, Some(env)).await;
        if let Ok(mut o) = out.lock() {
            *o = Some(result);
        }
        Ok(())
    });
    let apply = move |sim: &mut turmoil::Sim<'_>, c| apply(sim, &servers, c);
    let run = setup::step_until_done(&mut sim, &controls, apply, progress);
    let elapsed = sim.elapsed();
    drop(sim);
    let outcome = outcome.lock().ok().and_then(|mut o| o.take());
    let report = sim_report(
        &scenario, seed, opts, &disk, transcript, outcome, run, elapsed,
    );
    disk.remove();
    report
}

/// What every simulated client task of a run shares.
#[derive(Clone)]
struct ClientContext {
    /// Run seed (each client derives its own, [`client_seed`]).
    seed: u64,
    /// Where the clients record what they send and receive.
    transcript: Transcript,
    /// The scenario's `keep_going`.
    keep_going: bool,
    /// Whether the server has web services (`http` steps can connect).
    with_http: bool,
    /// The run's TLS material when a client has `tls = true`.
    tls: Option<Arc<crate::sim_tls::SimTls>>,
    /// The server hosts: `server`, or a pool's members.
    servers: Vec<String>,
    /// With `[pool]`: where each client is connected.
    placement: Placement,
}

/// A client's user: URI, password (Digest) and whether it speaks SIP over TLS.
type User = (String, Option<String>, bool);

/// The run's TLS material when a client of `scenario` has `tls = true` (none when the
/// certificate cannot be made: those clients then fail to connect, saying so).
fn sim_tls_of(scenario: &Scenario) -> Option<Arc<crate::sim_tls::SimTls>> {
    if !scenario.file.clients.iter().any(|c| c.tls) {
        return None;
    }
    match crate::sim_tls::SimTls::new() {
        Ok(t) => Some(Arc::new(t)),
        Err(e) => {
            tracing::warn!("no TLS certificate for the simulated server: {e}");
            None
        }
    }
}

/// How long a pool client waits for a member to accept its connection before it
/// tries the next member, ms.
const MEMBER_CONNECT_MS: u64 = 1000;

/// Connects to the first server host of `servers` (from `first`, in turn) that takes
/// the connection: with one server, that one; in a pool, the client's member, else
/// the next one up (as a front end fails over). Records where in `placement`.
async fn connect_member(
    servers: &[String],
    first: usize,
    port: u16,
    who: (&str, &Placement),
) -> std::io::Result<(turmoil::net::TcpStream, String)> {
    let mut last = None;
    for k in 0..servers.len().max(1) {
        let Some(host) = servers.get((first + k) % servers.len().max(1)) else {
            break;
        };
        let connect = turmoil::net::TcpStream::connect((host.as_str(), port));
        // A crashed member never answers the SYN: in a pool, try the next one after
        // MEMBER_CONNECT_MS (as a front end fails over).
        let attempt = match servers.len() > 1 {
            true => tokio::time::timeout(Duration::from_millis(MEMBER_CONNECT_MS), connect)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            false => connect.await,
        };
        match attempt {
            Ok(s) => {
                if let Ok(mut p) = who.1.lock() {
                    p.insert(who.0.to_string(), host.clone());
                }
                return Ok((s, host.clone()));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no server host")))
}

/// One client's task on a simulated host: connects to the server (in a pool, to its
/// member, `index.1`) over simulated TCP.
async fn sim_client(
    (index, member): (usize, usize),
    name: String,
    user: User,
    rx: mpsc::Receiver<Job>,
    ctx: ClientContext,
) {
    let tls = ctx.tls.clone().filter(|_| user.2);
    let wants_tls = user.2;
    let servers = Arc::new(ctx.servers.clone());
    let placement = ctx.placement.clone();
    let me = name.clone();
    let task = client_task(
        name,
        user,
        client_seed(ctx.seed, index),
        ctx.transcript.clone(),
        rx,
        move || {
            let tls = tls.clone();
            let (servers, placement, me) = (servers.clone(), placement.clone(), me.clone());
            async move {
                if let Some(t) = tls {
                    let (s, local) = t.connect().await?;
                    return Ok((Box::new(s) as Box<dyn pchat_server::tls::SipStream>, local));
                }
                if wants_tls {
                    return Err(std::io::Error::other("no TLS certificate for this run"));
                }
                let who = (me.as_str(), &placement);
                let (s, _) = connect_member(&servers, member, SIM_SIP_PORT, who).await?;
                let local = s.local_addr()?.to_string();
                Ok((Box::new(s) as Box<dyn pchat_server::tls::SipStream>, local))
            }
        },
        ctx.keep_going,
    );
    if ctx.with_http {
        // The web services of the server (in a pool: of the client's member).
        let host = ctx.servers.get(member).cloned().unwrap_or_default();
        let connect: crate::http_steps::HttpConnector = Arc::new(move || {
            let host = host.clone();
            Box::pin(async move {
                let s = turmoil::net::TcpStream::connect((host.as_str(), SIM_HTTP_PORT)).await?;
                let io: Box<dyn crate::http_steps::Io> = Box::new(s);
                Ok((io, format!("{host}:{SIM_HTTP_PORT}")))
            })
        });
        crate::http_steps::HTTP_CONNECT.scope(connect, task).await;
    } else {
        task.await;
    }
}

/// The report of a simulated run: the driver's `outcome` (none: it did not finish),
/// turmoil's result `run`, the invariants over `transcript` and the server's `disk`.
#[allow(clippy::too_many_arguments)]
fn sim_report(
    scenario: &Scenario,
    seed: u64,
    opts: &SimOptions,
    disk: &crate::sim_setup::ServerDisk,
    transcript: Transcript,
    outcome: Option<Outcome>,
    run: turmoil::Result,
    elapsed: Duration,
) -> RunReport {
    let (steps_passed, mut failure, step_failures, allowed_failures) = outcome.unwrap_or((
        0,
        Some("the driver did not finish".into()),
        Vec::new(),
        Vec::new(),
    ));
    if let (Err(e), None) = (run, &failure) {
        failure = Some(format!(
            "{}: simulation failed: {e}",
            scenario.path.display()
        ));
    }
    let compliance_files = disk.compliance_files();
    let compliance_output = compliance_files
        .as_ref()
        .map(|(_, dir)| read_compliance_output(dir));
    let mut violations = if scenario.file.invariants || opts.invariants {
        let files = crate::invariants::RunFiles {
            store: &disk.store_path,
            compliance: compliance_files
                .as_ref()
                .map(|(db, dir)| (db.as_path(), dir.as_path())),
        };
        crate::invariants::check(scenario, &transcript, &files)
    } else {
        Vec::new()
    };
    violations.extend(threshold_failures(scenario, &transcript));
    let outcome = (steps_passed, failure, step_failures, allowed_failures);
    RunReport {
        compliance_output,
        ..RunReport::from_outcome(scenario, seed, outcome, violations, transcript, elapsed)
    }
}

/// The scenario's `[thresholds]` not met by the run (`threshold ...` lines).
fn threshold_failures(scenario: &Scenario, transcript: &Transcript) -> Vec<String> {
    match &scenario.file.thresholds {
        Some(t) => crate::thresholds::check(t, transcript),
        None => Vec::new(),
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

/// `scenario` with every post's `msgid` prefixed by `run` (hex): a live server keeps
/// the message ids of earlier runs and would take a second run's posts for copies of
/// the first's (stored once, relayed to nobody). Simulated runs start from an empty
/// store and keep their ids as written.
pub fn with_run_msgids(scenario: &Scenario, run: u64) -> Scenario {
    let mut s = scenario.clone();
    for step in s.file.steps.iter_mut() {
        if let Action::Post { msgid: Some(m), .. } = step.get_mut().action.get_mut() {
            *m = format!("{run:x}-{m}");
        }
    }
    s
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
    let scenario = Arc::new(with_run_msgids(scenario, live_nonce()));
    let transcript = Transcript::default();
    let started = std::time::Instant::now();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return RunReport::not_started(&scenario, seed, format!("cannot start a runtime: {e}"))
        }
    };
    let keep_going = scenario.file.keep_going;
    let outcome = rt.block_on(async {
        let mut senders = BTreeMap::new();
        for (i, spec) in scenario.file.clients.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Job>(1);
            senders.insert(spec.name.clone(), tx);
            let target = target.to_string();
            let task = client_task(
                spec.name.clone(),
                (spec.uri.clone(), spec.password.clone(), false),
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
    // The store is out of reach live; completeness needs only the transcript.
    let violations = match scenario.file.invariants {
        true => crate::completeness::check(&scenario, &transcript),
        false => Vec::new(),
    }
    .into_iter()
    .chain(threshold_failures(&scenario, &transcript))
    .collect();
    let elapsed = started.elapsed();
    RunReport::from_outcome(&scenario, seed, outcome, violations, transcript, elapsed)
}
