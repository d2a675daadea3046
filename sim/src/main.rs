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
//! pchat-sim run scenarios/ --junit out/junit.xml --pcap out/pcap/
//! pchat-sim explore --runs 1000 --seed 7 scenarios/explore-base.toml
//! pchat-sim replay explore-out/explore-base-explore-seed7.toml
//! ```
//! Exit status: 0 all passed, 1 a scenario failed, 2 bad usage or a bad scenario file.

use clap::{Parser, Subcommand};
use pchat_sim::explore::{explore, ExploreOptions};
use pchat_sim::report;
use pchat_sim::runner::{run_live_with, run_sim, RunReport};
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
        /// With --target: the live server's web services (its `[http] listen`), for
        /// `http` steps.
        #[arg(long, value_name = "HOST:PORT", requires = "target")]
        http: Option<String>,
        /// Write each run's ladder (sequence) diagram to DIR/<scenario>.ladder.txt and
        /// DIR/<scenario>.html (SVG; hover an arrow for the whole message).
        #[arg(long, value_name = "DIR")]
        ladder: Option<PathBuf>,
        /// Print each run's text ladder diagram to the terminal.
        #[arg(long)]
        show_ladder: bool,
        #[command(flatten)]
        reports: ReportArgs,
    },
    /// Random fault schedules around a scenario; shrink and write the first failure.
    Explore {
        /// Base scenario file.
        #[arg(default_value = "scenarios/explore-base.toml")]
        path: PathBuf,
        /// Number of random schedules to run.
        #[arg(long, default_value_t = 100)]
        runs: u32,
        /// Seed of the schedule generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory for the minimal failing scenario file.
        #[arg(long, value_name = "DIR", default_value = "explore-out")]
        out: PathBuf,
        /// JUnit XML report (one test case: the exploration).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Plant a known bug in the simulated server (testing this tool): no-retry-dedup,
        /// no-crash-cleanup.
        #[arg(long, hide = true)]
        plant_bug: Option<String>,
    },
    /// Re-run a scenario file (e.g. one written by explore) with its own seed.
    Replay {
        /// Scenario file.
        file: PathBuf,
        /// Write the normalized transcript to DIR/<scenario>.txt.
        #[arg(long, value_name = "DIR")]
        transcript: Option<PathBuf>,
        #[command(flatten)]
        reports: ReportArgs,
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
    /// Print the JSON Schema of scenario files (pretty JSON on stdout; committed as
    /// docs/scenario.schema.json for editor completion).
    Schema,
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
    /// Print a pchat-server config (TOML) with the rooms and the --users users (SIP
    /// Digest on, their passwords) this load uses, and exit.
    #[arg(long)]
    print_server_config: bool,
}

fn load(a: LoadArgs) -> ExitCode {
    if a.print_server_config {
        print!(
            "{}",
            pchat_sim::load::server_config(&a.domain, &a.room_prefix, a.rooms, a.users)
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

/// Report outputs shared by `run` and `replay`.
#[derive(clap::Args, Debug, Default)]
struct ReportArgs {
    /// Write a JUnit XML report to FILE (one test case per scenario).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write each transcript as DIR/<scenario>.pcap (tshark/Wireshark decode it as SIP).
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes the --junit and --pcap outputs of finished runs.
fn write_reports(
    args: &ReportArgs,
    suite: &str,
    runs: &[(RunReport, String)],
) -> Result<(), String> {
    if let Some(file) = &args.junit {
        write_file(file, report::junit(suite, runs).as_bytes())?;
    }
    if let Some(dir) = &args.pcap {
        for (r, _) in runs {
            let file = dir.join(format!("{}.pcap", r.name));
            write_file(&file, &pchat_sim::pcap::from_transcript(&r.transcript))?;
        }
    }
    Ok(())
}

fn print_run(r: &RunReport, replay: &str) {
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
    for f in &r.step_failures {
        println!("     (kept going) {f}");
    }
    if let Some(f) = &r.failure {
        println!("     {f}");
    }
    for v in &r.violations {
        println!("     invariant violated: {v}");
    }
    if !r.passed() {
        println!("     replay: {replay}");
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
                // The simulated server's own warnings (injected faults) are noise here.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,pchat_server=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Command::Load(a) => load(a),
        Command::Schema => match pchat_sim::scenario::json_schema() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot write the schema: {e}");
                ExitCode::FAILURE
            }
        },
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
            reports,
            http,
            ladder,
            show_ladder,
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
            let bar = report::progress(scenarios.len() as u64, "scenarios");
            let mut runs: Vec<(RunReport, String)> = Vec::new();
            let mut skipped = 0;
            for s in &scenarios {
                if let (Some(_), Some(why)) = (&target, s.why_simulated_only()) {
                    println!("skip {:<28} {why}; run it simulated", s.name());
                    skipped += 1;
                    continue;
                }
                let seed = seed.or(s.file.seed).unwrap_or(DEFAULT_SEED);
                bar.set_message(s.name());
                let r = match &target {
                    Some(t) => run_live_with(s, t, http.as_deref(), seed),
                    None => run_sim(s, seed),
                };
                let replay = format!("pchat-sim run {} --seed {}", s.path.display(), r.seed);
                bar.suspend(|| print_run(&r, &replay));
                bar.inc(1);
                if let Some(dir) = &transcript {
                    let file = dir.join(format!("{}.txt", r.name));
                    if let Err(e) = std::fs::write(&file, r.transcript.render()) {
                        eprintln!("{}: {e}", file.display());
                    }
                }
                if show_ladder {
                    bar.suspend(|| print!("{}", pchat_sim::ladder::text(&r.transcript)));
                }
                if let Some(dir) = &ladder {
                    let outputs = [
                        (
                            format!("{}.ladder.txt", r.name),
                            pchat_sim::ladder::text(&r.transcript),
                        ),
                        (
                            format!("{}.html", r.name),
                            pchat_sim::ladder::html(&r.transcript, &r.name),
                        ),
                    ];
                    for (name, content) in outputs {
                        let file = dir.join(name);
                        let written = std::fs::create_dir_all(dir)
                            .and_then(|()| std::fs::write(&file, content));
                        if let Err(e) = written {
                            eprintln!("{}: {e}", file.display());
                        }
                    }
                }
                runs.push((r, replay));
            }
            bar.finish_and_clear();
            if skipped > 0 {
                println!(
                    "{skipped} skipped: they need the simulator or a fresh server (reasons above)"
                );
            }
            finish(&reports, "run", &runs)
        }
        Command::Replay {
            file,
            transcript,
            reports,
        } => {
            let s = match Scenario::load(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let seed = s.file.seed.unwrap_or(DEFAULT_SEED);
            let r = run_sim(&s, seed);
            let replay = format!("pchat-sim replay {}", file.display());
            print_run(&r, &replay);
            if let Some(dir) = &transcript {
                let out = dir.join(format!("{}.txt", r.name));
                if let Err(e) = write_file(&out, r.transcript.render().as_bytes()) {
                    eprintln!("{e}");
                }
            }
            finish(&reports, "replay", &[(r, replay)])
        }
        Command::Explore {
            path,
            runs,
            seed,
            out,
            junit,
            plant_bug,
        } => {
            let base = match Scenario::load(&path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let opts = ExploreOptions {
                runs,
                seed,
                out_dir: out,
                planted_bug: plant_bug,
                max_shrink_iters: 512,
            };
            println!(
                "exploring {} with {runs} random fault schedules, seed {seed}",
                path.display()
            );
            let bar = report::progress(u64::from(runs), "runs");
            let started = std::time::Instant::now();
            let result = explore(&base, &opts, &|n| bar.set_position(n));
            bar.finish_and_clear();
            let report = match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            println!(
                "{} runs (shrinking included) in {:.1}s wall, {:.0}s simulated; {} steps failed under faults (allowed)",
                report.runs,
                started.elapsed().as_secs_f64(),
                report.simulated.as_secs_f64(),
                report.failed_steps
            );
            let name = format!("explore {} --seed {seed}", base.name());
            let (status, code) = match &report.found {
                None => {
                    println!("invariants held in every run");
                    (None, ExitCode::SUCCESS)
                }
                Some(found) => {
                    println!(
                        "invariant violated; shrunk to {} fault(s), seed {}:",
                        found.case.faults.len(),
                        found.case.seed
                    );
                    for v in &found.report.violations {
                        println!("     {v}");
                    }
                    println!("     wrote {}", found.file.display());
                    println!("     replay: pchat-sim replay {}", found.file.display());
                    (Some(found), ExitCode::FAILURE)
                }
            };
            if let Some(file) = junit {
                let mut r = status
                    .map(|f| f.report.clone())
                    .unwrap_or_else(|| RunReport {
                        name: name.clone(),
                        seed,
                        steps_passed: 0,
                        steps_total: 0,
                        failure: None,
                        step_failures: Vec::new(),
                        violations: Vec::new(),
                        transcript: Default::default(),
                        elapsed: report.simulated,
                        compliance_output: None,
                    });
                r.name = name;
                let replay = status.map_or(String::new(), |f| {
                    format!("pchat-sim replay {}", f.file.display())
                });
                if let Err(e) =
                    write_file(&file, report::junit("explore", &[(r, replay)]).as_bytes())
                {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            }
            code
        }
    }
}

fn finish(reports: &ReportArgs, suite: &str, runs: &[(RunReport, String)]) -> ExitCode {
    let only: Vec<RunReport> = runs.iter().map(|(r, _)| r.clone()).collect();
    print!("{}", report::summary_table(&only));
    if let Err(e) = write_reports(reports, suite, runs) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    if only.iter().all(RunReport::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
