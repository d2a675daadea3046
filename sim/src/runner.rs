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
use std::collections::BTreeMap;
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
    /// First failure: `file:line:col: step N (action, client): message`.
    pub failure: Option<String>,
    /// Everything the clients sent and received.
    pub transcript: Transcript,
    /// Simulated (or, live, wall) time the run took.
    pub elapsed: Duration,
    /// With `[compliance] enabled` (simulated runs): every adapter output file at the
    /// end of the run, as `== <file name>` followed by its content, in name order.
    pub compliance_output: Option<String>,
}

impl RunReport {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

type Job = (Step, oneshot::Sender<steps::StepResult>);

/// What the driver reports: steps passed, and the first failure.
type Outcome = (usize, Option<String>);

/// Per-client seed: distinct per client, fixed per run seed.
fn client_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64 + 1)
}

/// The driver: feeds steps to client tasks in order; returns (steps passed, failure).
async fn drive(
    scenario: Arc<Scenario>,
    clients: BTreeMap<String, mpsc::Sender<Job>>,
    transcript: Transcript,
) -> (usize, Option<String>) {
    for (i, step) in scenario.file.steps.iter().enumerate() {
        let step = step.get_ref().clone();
        let kind = step.action.as_ref().map(|a| *a.get_ref());
        let who = step
            .client
            .as_ref()
            .map(|c| c.get_ref().clone())
            .unwrap_or_default();
        let label = format!(
            "step {} ({} {}{})",
            i + 1,
            who,
            kind.map_or("?", |k| k.name()),
            step.room
                .as_ref()
                .map(|r| format!(" {}", r.get_ref()))
                .unwrap_or_default()
        );
        transcript.note(&label);
        if kind == Some(ActionKind::Wait) {
            tokio::time::sleep(Duration::from_millis(step.ms.unwrap_or(0))).await;
            continue;
        }
        let Some(tx) = clients.get(&who) else {
            return (
                i,
                Some(format!(
                    "{}: {label}: unknown client",
                    scenario.step_location(i)
                )),
            );
        };
        let (rtx, rrx) = oneshot::channel();
        let outcome = match tx.send((step, rtx)).await {
            Ok(()) => rrx
                .await
                .unwrap_or_else(|_| Err("client task ended".into())),
            Err(_) => Err("client task ended".into()),
        };
        if let Err(msg) = outcome {
            return (
                i,
                Some(format!("{}: {label}: {msg}", scenario.step_location(i))),
            );
        }
    }
    (scenario.file.steps.len(), None)
}

/// A client's task: connects with `connect` (again after a `disconnect` step) and runs
/// the jobs it is handed.
async fn client_task<S, F, Fut>(
    name: String,
    uri: String,
    seed: u64,
    transcript: Transcript,
    mut jobs: mpsc::Receiver<Job>,
    connect: F,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<(S, String)>>,
{
    let mut client: Option<Client> = None;
    let mut connection = 0u64;
    while let Some((step, reply)) = jobs.recv().await {
        if step.action.as_ref().map(|a| *a.get_ref()) == Some(ActionKind::Disconnect) {
            client = None;
            let _ = reply.send(Ok("disconnected".into()));
            continue;
        }
        if client.is_none() {
            match connect().await {
                Ok((stream, local)) => {
                    connection += 1;
                    let seed = seed.wrapping_add(connection.wrapping_mul(0x1000_0000_01B3));
                    client = Some(Client::start(
                        &name,
                        &uri,
                        stream,
                        &local,
                        seed,
                        transcript.clone(),
                    ));
                }
                Err(e) => {
                    let _ = reply.send(Err(format!("{name}: cannot connect: {e}")));
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let result = steps::exec(c, &step).await;
        let _ = reply.send(result);
    }
}

/// Runs `scenario` in the simulator with `seed`.
pub fn run_sim(scenario: &Scenario, seed: u64) -> RunReport {
    let scenario = Arc::new(scenario.clone());
    let transcript = Transcript::default();
    let outcome: Arc<Mutex<Option<Outcome>>> = Arc::default();
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(3600))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .build();
    let store_dir = tempfile::tempdir().ok();
    let store_path = store_dir.as_ref().map_or_else(
        || std::path::PathBuf::from(":memory:"),
        |d| d.path().join("pchat.db"),
    );
    let mut cfg = scenario.server_config();
    cfg.store.path = store_path;
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
    let output_dir = cfg
        .compliance
        .enabled
        .then(|| cfg.compliance.output_dir.clone());
    sim.host("server", move || {
        let cfg = cfg.clone();
        async move {
            let listener =
                turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), SIM_SIP_PORT))
                    .await?;
            let local = SocketAddr::new(turmoil::lookup("server"), SIM_SIP_PORT).to_string();
            let clock = Arc::new(pchat_server::clock::TokioClock::starting_at(
                pchat_server::clock::SIM_EPOCH_MS,
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
            let worker = pchat_server::build_worker(&cfg, None)?;
            let core = pchat_server::build_core(cfg, clock, seed, &local)?;
            pchat_server::host::serve_full(
                crate::sim_net::SimListener(listener),
                http,
                core,
                worker,
                std::future::pending(),
            )
            .await?;
            Ok(())
        }
    });
    let mut senders = BTreeMap::new();
    for (i, spec) in scenario.file.clients.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Job>(1);
        senders.insert(spec.name.clone(), tx);
        let (name, uri, t) = (spec.name.clone(), spec.uri.clone(), transcript.clone());
        let rx = Arc::new(Mutex::new(Some(rx)));
        sim.client(spec.name.as_str(), async move {
            let Some(rx) = rx.lock().ok().and_then(|mut r| r.take()) else {
                return Ok(());
            };
            let task = client_task(name, uri, client_seed(seed, i), t, rx, || async {
                let s = turmoil::net::TcpStream::connect(("server", SIM_SIP_PORT)).await?;
                let local = s.local_addr()?.to_string();
                Ok((s, local))
            });
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
    let (sc, t, out) = (scenario.clone(), transcript.clone(), outcome.clone());
    sim.client("qa-driver", async move {
        let result = drive(sc, senders, t).await;
        if let Ok(mut o) = out.lock() {
            *o = Some(result);
        }
        Ok(())
    });
    let run = sim.run();
    let elapsed = sim.elapsed();
    let (steps_passed, mut failure) = outcome
        .lock()
        .ok()
        .and_then(|mut o| o.take())
        .unwrap_or((0, Some("the driver did not finish".into())));
    if let (Err(e), None) = (run, &failure) {
        failure = Some(format!(
            "{}: simulation failed: {e}",
            scenario.path.display()
        ));
    }
    let compliance_output = output_dir.map(|dir| read_compliance_output(&dir));
    drop(store_dir);
    RunReport {
        name: scenario.name(),
        seed,
        steps_passed,
        steps_total: scenario.file.steps.len(),
        failure,
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
                transcript,
                elapsed: Duration::ZERO,
                compliance_output: None,
            }
        }
    };
    let (steps_passed, failure) = rt.block_on(async {
        let mut senders = BTreeMap::new();
        for (i, spec) in scenario.file.clients.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Job>(1);
            senders.insert(spec.name.clone(), tx);
            let target = target.to_string();
            let task = client_task(
                spec.name.clone(),
                spec.uri.clone(),
                client_seed(seed, i),
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
        drive(scenario.clone(), senders, transcript.clone()).await
    });
    RunReport {
        name: scenario.name(),
        seed,
        steps_passed,
        steps_total: scenario.file.steps.len(),
        failure,
        transcript,
        elapsed: started.elapsed(),
        compliance_output: None,
    }
}
