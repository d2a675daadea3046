//! `pchat-sim`: runs QA scenario files in the deterministic simulator or against a live
//! server.
//!
//! ```text
//! pchat-sim run scenarios/                       # every *.toml, simulated
//! pchat-sim run scenarios/join-and-post.toml --seed 7 --transcript out/
//! pchat-sim run scenarios/ --target 127.0.0.1:5060   # real TCP to a running server
//! pchat-sim check scenarios/                     # parse and validate only
//! pchat-sim load --target 127.0.0.1:5060 --users 1000 --rooms 50 --room-size 20 \
//!                --rate 2000 --duration 10s [--json]   # load generator (see load.rs)
//! ```
//! Exit status: 0 all passed, 1 a scenario failed, 2 bad usage or a bad scenario file.

use clap::{Parser, Subcommand};
use pchat_sim::runner::{run_live, run_sim, RunReport};
use pchat_sim::scenario::{discover, Scenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Default seed when neither --seed nor the scenario's `seed` is given.
const DEFAULT_SEED: u64 = 1;

#[derive(Parser, Debug)]
#[command(version, about = "pchat simulator and scenario runner")]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenario files (a file, or every *.toml in a directory).
    Run {
        /// Scenario file or directory.
        path: PathBuf,
        /// Simulation seed (overrides the scenario's `seed`; default 1).
        #[arg(long)]
        seed: Option<u64>,
        /// Write each run's normalized transcript to DIR/<scenario>.txt.
        #[arg(long, value_name = "DIR")]
        transcript: Option<PathBuf>,
        /// Run against a live server at HOST:PORT over real TCP instead of simulating.
        #[arg(long, value_name = "HOST:PORT")]
        target: Option<String>,
    },
    /// Parse and validate scenario files without running them.
    Check {
        /// Scenario file or directory.
        path: PathBuf,
    },
    /// Load generator: many real SIP/TCP sessions against a running server, open-loop
    /// posts, throughput and latency report (exit 1 if not every session signed in or
    /// no post was acknowledged).
    Load(LoadArgs),
}

#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// Server SIP/TCP address, HOST:PORT.
    #[arg(
        long,
        value_name = "HOST:PORT",
        required_unless_present = "print_server_config"
    )]
    target: Option<String>,
    /// Sessions to open and sign in.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Rooms used, named {room-prefix}0.. (open rooms on the server; see --print-server-config).
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Members per room.
    #[arg(long = "room-size", default_value_t = 10)]
    room_size: usize,
    /// Posts per second, on an open-loop schedule.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long to post: 30s, 2m, 500ms or seconds.
    #[arg(long, default_value = "10s", value_parser = pchat_sim::load::parse_duration)]
    duration: std::time::Duration,
    /// Longest wait after the window for outstanding answers and relays.
    #[arg(long, default_value = "5s", value_parser = pchat_sim::load::parse_duration)]
    drain: std::time::Duration,
    /// Print the report as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Server pid for the RSS figure (default: the process listening on the target port).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// SIP domain of the users and rooms.
    #[arg(long, default_value = "contoso.com")]
    domain: String,
    /// Room name prefix.
    #[arg(long, default_value = "load-")]
    room_prefix: String,
    /// Sign-ins in flight at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Spread sessions over source addresses 127.0.0.1..=127.0.0.K (loopback target;
    /// default ceil(users / 10000)).
    #[arg(long, value_name = "K")]
    source_ips: Option<usize>,
    /// Seed of the choice of posters.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timeout of each sign-in step (connect, INVITE, bjoin).
    #[arg(long, default_value = "30s", value_parser = pchat_sim::load::parse_duration)]
    signin_timeout: std::time::Duration,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print a pchat-server config (TOML) with the rooms this load uses, and exit.
    #[arg(long)]
    print_server_config: bool,
}

fn load(a: LoadArgs) -> ExitCode {
    if a.print_server_config {
        print!(
            "{}",
            pchat_sim::load::server_config(&a.domain, &a.room_prefix, a.rooms)
        );
        return ExitCode::SUCCESS;
    }
    let target = a.target.unwrap_or_default();
    let addr = match std::net::ToSocketAddrs::to_socket_addrs(&target)
        .ok()
        .and_then(|mut it| it.next())
    {
        Some(addr) => addr,
        None => {
            eprintln!("--target {target}: not a HOST:PORT that resolves");
            return ExitCode::from(2);
        }
    };
    let cfg = pchat_sim::load::LoadConfig {
        target: addr,
        users: a.users,
        rooms: a.rooms,
        room_size: a.room_size,
        rate: a.rate,
        duration: a.duration,
        drain: a.drain,
        domain: a.domain,
        room_prefix: a.room_prefix,
        connect_concurrency: a.connect_concurrency,
        source_ips: a.source_ips,
        server_pid: a.server_pid,
        seed: a.seed,
        signin_timeout: a.signin_timeout,
        progress: !a.quiet,
    };
    let report = match pchat_sim::load::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pchat-sim load: {e}");
            return ExitCode::from(2);
        }
    };
    if a.json {
        eprint!("{}", report.table());
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("cannot write JSON: {e}"),
        }
    } else {
        print!("{}", report.table());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn load_all(path: &Path) -> Result<Vec<Scenario>, String> {
    let files = discover(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if files.is_empty() {
        return Err(format!("{}: no *.toml scenario files", path.display()));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match Scenario::load(&f) {
            Ok(s) => out.push(s),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Command::Load(a) => load(a),
        Command::Check { path } => match load_all(&path) {
            Ok(s) => {
                println!("{} scenario file(s) valid", s.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            path,
            seed,
            transcript,
            target,
        } => {
            let scenarios = match load_all(&path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(dir) = &transcript {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    eprintln!("{}: {e}", dir.display());
                    return ExitCode::from(2);
                }
            }
            let mode = target
                .as_deref()
                .map_or("simulated".to_string(), |t| format!("live {t}"));
            println!("running {} scenario(s), {mode}", scenarios.len());
            let mut reports: Vec<RunReport> = Vec::new();
            let mut skipped = 0;
            for s in &scenarios {
                if target.is_some() && s.needs_own_server() {
                    println!(
                        "skip {:<28} defines its own [[room]]/[[category]]/[limits]; run it simulated",
                        s.name()
                    );
                    skipped += 1;
                    continue;
                }
                let seed = seed.or(s.file.seed).unwrap_or(DEFAULT_SEED);
                let r = match &target {
                    Some(t) => run_live(s, t, seed),
                    None => run_sim(s, seed),
                };
                let status = if r.passed() { "ok  " } else { "FAIL" };
                println!(
                    "{status} {:<28} seed={:<6} steps {}/{}  messages {:<4} time {:.3}s",
                    r.name,
                    r.seed,
                    r.steps_passed,
                    r.steps_total,
                    r.transcript.message_count(),
                    r.elapsed.as_secs_f64()
                );
                if let Some(f) = &r.failure {
                    println!("     {f}");
                    println!(
                        "     replay: pchat-sim run {} --seed {}",
                        s.path.display(),
                        r.seed
                    );
                }
                if let Some(dir) = &transcript {
                    let file = dir.join(format!("{}.txt", r.name));
                    if let Err(e) = std::fs::write(&file, r.transcript.render()) {
                        eprintln!("{}: {e}", file.display());
                    }
                }
                reports.push(r);
            }
            let failed = reports.iter().filter(|r| !r.passed()).count();
            println!(
                "{} passed, {} failed, {skipped} skipped",
                reports.len() - failed,
                failed
            );
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
