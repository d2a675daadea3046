//! Setting up and running one simulated run, in the manner of turmoil's
//! `examples/cluster`: build the `Sim`, add the server host, the client hosts and the
//! QA driver, step until the driver is done, then read the server's disk.
//!
//! [`crate::runner::run_sim_with`] is the entry point; this module holds its parts:
//! - [`ServerDisk`]: the temporary directory that plays the server's disk (store,
//!   compliance database and output, file stores), which outlives server crashes;
//! - [`add_server`]: the `server` host, a new incarnation at every (re)start;
//! - [`add_clients`]: the client hosts of the [`HostPlan`], one task per client (the
//!   runner's client task, handed in as a [`ClientStarter`]);
//! - [`step_until_done`]: the step loop, paced by [`Pacer`], applying fault controls.

use crate::scenario::Scenario;
use crate::sim_clock::Pacer;
use crate::sim_hosts::HostPlan;
use pchat_server::config::Config;
use pchat_server::fault::Faults;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// SIP port of the simulated server.
pub const SIM_SIP_PORT: u16 = 5060;
/// The simulated server's HTTP port (web services, when the scenario has `[http]`).
pub const SIM_HTTP_PORT: u16 = 8080;

/// Longest simulated run before turmoil gives up.
const SIM_DURATION: Duration = Duration::from_secs(3600);

/// The server's disk for one run: a temporary directory (on /dev/shm when there is one:
/// fsync there costs nothing, and runs are many) and the server config pointing into it.
pub struct ServerDisk {
    /// Kept for its lifetime: dropping it deletes the directory.
    dir: Option<tempfile::TempDir>,
    /// The store file (`:memory:` when no directory could be made).
    pub store_path: PathBuf,
    /// The scenario's server config with every path in the directory.
    pub config: Config,
}

impl ServerDisk {
    /// A fresh disk and config for `scenario`.
    pub fn new(scenario: &Scenario) -> ServerDisk {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
        } else {
            tempfile::tempdir()
        }
        .ok();
        let store_path = dir
            .as_ref()
            .map_or_else(|| PathBuf::from(":memory:"), |d| d.path().join("pchat.db"));
        let mut config = scenario.server_config();
        config.store.path = store_path.clone();
        if let Some(d) = dir.as_ref() {
            config.compliance.path = d.path().join("mgccomp.db");
            config.compliance.output_dir = d.path().join("compliance");
            if let Some(h) = config.http.as_mut() {
                h.listen = format!("server:{SIM_HTTP_PORT}");
                h.file_store = d.path().join("files");
                h.compliance_file_store = d.path().join("compliance-files");
            }
        }
        if let Some(h) = config.http.as_mut() {
            // The simulated clients speak plain HTTP over turmoil: no `[http] tls`.
            h.tls = false;
        }
        ServerDisk {
            dir,
            store_path,
            config,
        }
    }

    /// With compliance on: the compliance database and the adapter's output directory.
    pub fn compliance_files(&self) -> Option<(PathBuf, PathBuf)> {
        self.config.compliance.enabled.then(|| {
            (
                self.config.compliance.path.clone(),
                self.config.compliance.output_dir.clone(),
            )
        })
    }

    /// Deletes the directory (also done on drop).
    pub fn remove(self) {
        drop(self.dir);
    }
}

/// The forced faults of a run, with the scenario's planted bug (if any) switched on.
pub fn planted_faults(scenario: &Scenario) -> Faults {
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
    faults
}

/// A turmoil simulation seeded with `seed`: 1 ms first tick ([`Pacer`] adapts it),
/// base latency `latency_ms` (min, max).
pub fn build_sim<'a>(seed: u64, latency_ms: (u64, u64)) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(SIM_DURATION)
        .tick_duration(crate::sim_clock::BUSY_TICK)
        .tcp_capacity(4096)
        .min_message_latency(Duration::from_millis(latency_ms.0))
        .max_message_latency(Duration::from_millis(latency_ms.1))
        .build()
}

/// Adds the `server` host running the real server code with `cfg` and `faults`. Each
/// start (the first, and every restart after a crash) is a new incarnation: like a
/// real process it gets fresh identifiers (its own seed) and reads the clock where
/// simulated time is, instead of replaying its first life.
/// With `tls`, it also serves SIP over TLS on [`crate::sim_tls::SIM_TLS_PORT`].
pub fn add_server(
    sim: &mut turmoil::Sim<'_>,
    cfg: Config,
    faults: Faults,
    seed: u64,
    tls: Option<Arc<crate::sim_tls::SimTls>>,
) {
    add_server_host(sim, "server", cfg, faults, seed, tls, None);
}

/// Adds the members of a simulated pool (`[pool] servers = N`, docs/pool.md): hosts
/// `members[i]`, each the real server code with `[pool] server_id` = its host name, all
/// on the one SQLite file of `cfg` (`[store] path`), waking each other through one
/// [`CommitBell`](pchat_server::store::CommitBell) (the stand-in for PostgreSQL's
/// NOTIFY). The members share `faults` (a store fault is the shared store failing).
pub fn add_members(
    sim: &mut turmoil::Sim<'_>,
    members: &[String],
    cfg: &Config,
    faults: &Faults,
    seed: u64,
    tls: Option<Arc<crate::sim_tls::SimTls>>,
) {
    let bell = pchat_server::store::CommitBell::default();
    for (i, name) in members.iter().enumerate() {
        let mut cfg = cfg.clone();
        cfg.pool.server_id = name.clone();
        let seed = seed ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let bell = Some(bell.clone());
        add_server_host(sim, name, cfg, faults.clone(), seed, tls.clone(), bell);
    }
}

/// [`add_server`] for a host named `name`; with `bell`, a pool member.
fn add_server_host(
    sim: &mut turmoil::Sim<'_>,
    name: &str,
    cfg: Config,
    faults: Faults,
    seed: u64,
    tls: Option<Arc<crate::sim_tls::SimTls>>,
    bell: Option<pchat_server::store::CommitBell>,
) {
    let incarnation = Arc::new(AtomicU64::new(0));
    let host = name.to_string();
    sim.host(name, move || {
        let life = incarnation.fetch_add(1, Ordering::SeqCst);
        let seed = seed ^ life.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let who = Who {
            host: host.clone(),
            bell: bell.clone(),
        };
        serve_once(who, cfg.clone(), faults.clone(), seed, tls.clone())
    });
}

/// Which simulated server an incarnation is: its host name, and its pool's bell.
struct Who {
    host: String,
    bell: Option<pchat_server::store::CommitBell>,
}

/// One incarnation of the simulated server: listens on [`SIM_SIP_PORT`] (and
/// [`SIM_HTTP_PORT`] with `[http]`) and serves until crashed. A store that cannot be
/// opened ends it, like the binary (a `restart` or the end of the run starts it again).
async fn serve_once(
    who: Who,
    mut cfg: Config,
    faults: Faults,
    seed: u64,
    tls: Option<Arc<crate::sim_tls::SimTls>>,
) -> turmoil::Result {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let listener = turmoil::net::TcpListener::bind((any, SIM_SIP_PORT)).await?;
    let me = turmoil::lookup(who.host.as_str());
    let local = SocketAddr::new(me, SIM_SIP_PORT).to_string();
    if tls.is_some() {
        // Our Contact on TLS connections names the TLS listener (`transport=tls`).
        let at = SocketAddr::new(me, crate::sim_tls::SIM_TLS_PORT);
        cfg.sip.tls_listen = Some(at.to_string());
    }
    if let (Some(h), Some(_)) = (cfg.http.as_mut(), who.bell.as_ref()) {
        h.listen = format!("{}:{SIM_HTTP_PORT}", who.host);
    }
    let since = turmoil::sim_elapsed().unwrap_or_default().as_millis() as i64;
    let clock = Arc::new(pchat_server::clock::TokioClock::starting_at(
        pchat_server::clock::SIM_EPOCH_MS + since,
    ));
    let http = match cfg.http.is_some() {
        true => Some(crate::sim_net::SimListener(
            turmoil::net::TcpListener::bind((any, SIM_HTTP_PORT)).await?,
        )),
        false => None,
    };
    if who.bell.is_some() {
        cfg.pool.shared_sqlite = true;
    }
    let worker = match pchat_server::build_worker(&cfg, None) {
        Ok(w) => w,
        Err(e) => {
            tracing::info!("simulated compliance worker did not start: {e}");
            return Ok(());
        }
    };
    let built = match who.bell {
        Some(bell) => {
            pchat_server::build_pool_member(cfg, clock, seed, &local, faults.clone(), bell)
        }
        None => pchat_server::build_core_with_faults(cfg, clock, seed, &local, faults.clone()),
    };
    let core = match built {
        Ok(core) => core,
        Err(e) => {
            tracing::info!("simulated server did not start: {e}");
            return Ok(());
        }
    };
    let stop = std::future::pending();
    match tls {
        Some(t) => {
            let sip = crate::sim_tls::SimSipListeners {
                plain: listener,
                tls: turmoil::net::TcpListener::bind((any, crate::sim_tls::SIM_TLS_PORT)).await?,
                acceptor: t.acceptor()?,
            };
            pchat_server::host::serve_full(sip, http, core, worker, stop, faults).await?;
        }
        None => {
            let sip = crate::sim_net::SimListener(listener);
            pchat_server::host::serve_full(sip, http, core, worker, stop, faults).await?;
        }
    }
    Ok(())
}

/// Starts one client's task on its simulated host: given the client's index in the
/// scenario and its job queue, the future that runs it (the runner's client task).
pub type ClientStarter<J> =
    Rc<dyn Fn(usize, mpsc::Receiver<J>) -> Pin<Box<dyn Future<Output = ()>>>>;

/// Adds the client hosts of `plan`, each running `start` for its clients; returns each
/// client's job queue (capacity 1) by client name.
pub fn add_clients<J: 'static>(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    plan: &HostPlan,
    start: &ClientStarter<J>,
) -> BTreeMap<String, mpsc::Sender<J>> {
    let mut senders = BTreeMap::new();
    for host in &plan.hosts {
        let mut members = Vec::new();
        for &i in &host.clients {
            let (tx, rx) = mpsc::channel::<J>(1);
            senders.insert(scenario.file.clients[i].name.clone(), tx);
            members.push((i, rx));
        }
        // The client future is built once and must be 'static: hand it its members.
        let members = Rc::new(std::cell::RefCell::new(Some(members)));
        let start = start.clone();
        sim.client(host.name.as_str(), async move {
            let Some(members) = members.borrow_mut().take() else {
                return Ok(());
            };
            run_host_clients(members, start).await;
            Ok(())
        });
    }
    senders
}

/// A client host's software: its clients' tasks (the only one inline, several as
/// local tasks), until all end.
async fn run_host_clients<J: 'static>(
    members: Vec<(usize, mpsc::Receiver<J>)>,
    start: ClientStarter<J>,
) {
    let single = members.len() == 1;
    let mut tasks = Vec::new();
    for (i, rx) in members {
        let task = start(i, rx);
        if single {
            task.await;
            return;
        }
        tasks.push(tokio::task::spawn_local(task));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Simulated and wall time of a run so far, handed to a progress callback.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Simulated time since the start.
    pub simulated: Duration,
    /// Wall time since the start.
    pub wall: Duration,
}

/// Wall time between two progress callbacks.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Steps `sim` until every client host is done, applying (`apply`) the fault controls
/// queued by the driver between steps and choosing each step's length with a [`Pacer`]; calls
/// `progress` about every 250 ms of wall time. Errors are turmoil's (a host failed, or
/// [`SIM_DURATION`] passed).
pub fn step_until_done<C>(
    sim: &mut turmoil::Sim<'_>,
    controls: &Mutex<Vec<C>>,
    apply: impl Fn(&mut turmoil::Sim<'_>, C),
    progress: &dyn Fn(Progress),
) -> turmoil::Result {
    let mut pacer = Pacer::new();
    let started = Instant::now();
    let mut shown = started;
    let mut steps = 0u64;
    loop {
        let tick = pacer.next_tick(sim.elapsed(), sim.is_network_idle());
        if tick != sim.tick_duration() {
            sim.set_tick_duration(tick);
        }
        if sim.step()? {
            return Ok(());
        }
        let pending: Vec<C> = controls
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        for c in pending {
            apply(sim, c);
        }
        // Read the wall clock only every 256 steps.
        steps += 1;
        if steps >= 256 {
            steps = 0;
            if shown.elapsed() >= PROGRESS_EVERY {
                shown = Instant::now();
                progress(Progress {
                    simulated: sim.elapsed(),
                    wall: started.elapsed(),
                });
            }
        }
    }
}
