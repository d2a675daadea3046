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
use pchat_sim::batch;
use pchat_sim::explore::{explore, ExploreOptions};
use pchat_sim::report::{self, Entry};
use pchat_sim::runner::{run_live_with, run_sim, RunReport};
use pchat_sim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// mimalloc instead of the system allocator: a simulated run is mostly small,
/// short-lived allocations (frames, parsed headers, queue nodes, transcript entries) and
/// glibc's malloc/free were ~12 % of the 100-client chat run (BENCHMARKS.md, issue 14).
/// It changes no output: nothing in a run depends on addresses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run scenario files (files, directories of *.toml, glob patterns).
    Run(RunArgs),
    /// Random fault schedules around a scenario; shrink and write the first failure.
    Explore(ExploreArgs),
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
    /// Parse and validate scenario files without running them (every error of every
    /// file).
    Check {
        /// Scenario files, directories or glob patterns.
        #[arg(required = true)]
        paths: Vec<String>,
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
struct RunArgs {
    /// Scenario files, directories (every *.toml) or glob patterns.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Simulation seed (overrides the scenario's `seed`; default 1).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Seed sweep: run each scenario with every seed of A..B (B included), A..=B or a
    /// list 1,5,9; outputs are named <scenario>-seed<N>.
    #[arg(long, value_name = "RANGE")]
    seeds: Option<String>,
    /// Only scenarios whose name contains a term or that have it in `tags`;
    /// comma-separated, `!term` excludes (e.g. `--filter fault,!slow`).
    #[arg(long, value_name = "TERMS")]
    filter: Option<String>,
    /// Runs at once (default: the core count when simulated, 1 with --target). Each
    /// simulated run is deterministic: the results do not depend on it.
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
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
    /// With --target: the live server's configuration file; scenarios with their own
    /// [[room]]/[[category]]/[limits] then run live when the server has them.
    #[arg(long, value_name = "FILE", requires = "target")]
    server_config: Option<PathBuf>,
    /// With --target and --http: a room administrator (a creator in the rooms'
    /// categories on that server) who creates each scenario's [[room]]s through the
    /// room-management API before its run and retires them after, so that scenarios
    /// with their own rooms run live.
    #[arg(long, value_name = "URI", requires = "http")]
    room_admin: Option<String>,
    /// The room administrator's SIP Digest password (servers with [auth]).
    #[arg(long, value_name = "PASSWORD", requires = "room_admin")]
    room_admin_password: Option<String>,
    /// Write each run's ladder (sequence) diagram to DIR/<scenario>.ladder.txt and
    /// DIR/<scenario>.html (SVG; hover an arrow for the whole message).
    #[arg(long, value_name = "DIR")]
    ladder: Option<PathBuf>,
    /// Print each run's text ladder diagram to the terminal.
    #[arg(long)]
    show_ladder: bool,
    /// After the run, watch the scenario files (and their [data] CSV files) and run
    /// again whenever one changes; Ctrl-C stops.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    reports: ReportArgs,
}

#[derive(clap::Args, Debug)]
struct ExploreArgs {
    /// Base scenario file.
    #[arg(default_value = "scenarios/explore-base.toml")]
    path: PathBuf,
    /// Number of random schedules to run (default 100; with --duration: until the time
    /// is up).
    #[arg(long)]
    runs: Option<u32>,
    /// Stop starting new schedules after this long (wall clock): 30s, 2m, 500ms.
    #[arg(long, value_parser = pchat_sim::load::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Seed of the schedule generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the minimal failing scenario file.
    #[arg(long, value_name = "DIR", default_value = "explore-out")]
    out: PathBuf,
    /// JUnit XML report (one test case: the exploration; time = wall clock).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Plant a known bug in the simulated server, to check that explore finds it
    /// (testing this tool): no-retry-dedup, no-crash-cleanup. Default: the file's
    /// `planted_bug`, if any.
    #[arg(long, value_name = "BUG")]
    plant_bug: Option<String>,
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
    /// What the run does.
    #[command(flatten)]
    settings: pchat_sim::load::LoadSettings,
    /// Print the report as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
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
            pchat_sim::load::server_config(
                &a.settings.domain,
                &a.settings.room_prefix,
                a.settings.rooms,
                a.settings.users
            )
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
        settings: a.settings,
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
    /// Write a JUnit XML report to FILE (one test case per scenario; skipped and broken
    /// files included).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write each transcript as DIR/<scenario>.pcap (tshark/Wireshark decode it as SIP).
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// Write one HTML summary of the whole run to FILE: pass/fail table, times, and
    /// links to each scenario's ladder, transcript and pcap (with --ladder,
    /// --transcript, --pcap).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

/// `target` as a link from a page in `dir`: relative when it is below `dir`.
fn href(dir: &Path, target: &Path) -> String {
    let rel = target.strip_prefix(dir).unwrap_or(target);
    rel.display().to_string()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes the --html summary; `dirs` are the --ladder and --transcript directories.
fn write_html(
    args: &ReportArgs,
    file: &Path,
    entries: &[Entry],
    dirs: (Option<&Path>, Option<&Path>),
) -> Result<(), String> {
    let here = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let links = |name: &str| {
        let mut v = Vec::new();
        if let Some(d) = dirs.0 {
            v.push((
                "ladder".to_string(),
                href(&here, &d.join(format!("{name}.html"))),
            ));
        }
        if let Some(d) = dirs.1 {
            v.push((
                "transcript".to_string(),
                href(&here, &d.join(format!("{name}.txt"))),
            ));
        }
        if let Some(d) = &args.pcap {
            v.push((
                "pcap".to_string(),
                href(&here, &d.join(format!("{name}.pcap"))),
            ));
        }
        v
    };
    write_file(
        file,
        report::html_summary("pchat-sim run", entries, &links).as_bytes(),
    )
}

/// Writes the --junit and --pcap outputs of finished runs.
fn write_reports(args: &ReportArgs, suite: &str, entries: &[Entry]) -> Result<(), String> {
    if let Some(file) = &args.junit {
        write_file(file, report::junit(suite, entries).as_bytes())?;
    }
    if let Some(dir) = &args.pcap {
        for e in entries {
            if let Entry::Ran { report: r, .. } = e {
                let file = dir.join(format!("{}.pcap", r.name));
                write_file(&file, &pchat_sim::pcap::from_transcript(&r.transcript))?;
            }
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
    for f in &r.allowed_failures {
        println!("     (allowed to fail) {f}");
    }
    for f in &r.step_failures {
        println!("     step failed (kept going): {f}");
    }
    if let Some(f) = &r.failure {
        println!("     {f}");
    }
    for v in &r.violations {
        match v.starts_with("threshold ") {
            true => println!("     {v} (not met)"),
            false => println!("     invariant violated: {v}"),
        }
    }
    if !r.passed() {
        println!("     replay: {replay}");
    }
}

fn main() -> ExitCode {
    // The simulated server's own warnings (injected faults) are noise here.
    pchat_server::init_tracing("warn,pchat_server=off");
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
        Command::Check { paths } => check(&paths),
        Command::Run(args) => run_watching(&args),
        Command::Replay {
            file,
            transcript,
            reports,
        } => replay(&file, transcript.as_deref(), &reports),
        Command::Explore(args) => explore_cmd(args),
    }
}

/// The files `paths` name ([`batch::select`]), its warnings printed; a selection that
/// fails is printed and gives exit code 2.
fn select(paths: &[String], filter: Option<&str>) -> Result<batch::Selection, ExitCode> {
    let sel = batch::select(paths, filter).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    for w in &sel.warnings {
        eprintln!("{w}");
    }
    Ok(sel)
}

/// `check`: every error of every file; exit 2 if any.
fn check(paths: &[String]) -> ExitCode {
    let sel = match select(paths, None) {
        Ok(s) => s,
        Err(code) => return code,
    };
    for e in &sel.broken {
        eprintln!("{e}");
    }
    let errors: usize = sel.broken.iter().map(|e| e.count()).sum();
    println!(
        "{} scenario file(s) valid, {} invalid ({errors} error(s))",
        sel.scenarios.len(),
        sel.broken.len()
    );
    if sel.broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// One run to do: a scenario with a seed, and its output name.
struct Job<'a> {
    scenario: &'a Scenario,
    seed: u64,
    name: String,
}

/// The runs of `run`: every scenario with every seed (skipping, with --target, what
/// needs the simulator), and the entries of the skipped ones.
fn plan<'a>(
    args: &RunArgs,
    scenarios: &'a [Scenario],
) -> Result<(Vec<Job<'a>>, Vec<Entry>), String> {
    let sweep = args.seeds.as_deref().map(batch::parse_seeds).transpose()?;
    let server = match &args.server_config {
        Some(p) => Some(pchat_server::config::Config::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for s in scenarios {
        let create_rooms = args.room_admin.is_some();
        let why = s.why_not_live_with(server.as_ref(), create_rooms);
        if let (Some(_), Some(why)) = (&args.target, why) {
            println!("skip {:<28} {why}; run it simulated", s.name());
            skipped.push(Entry::Skipped {
                name: s.name(),
                why: format!("{why}; run it simulated"),
            });
            continue;
        }
        match &sweep {
            Some(seeds) => jobs.extend(seeds.iter().map(|&seed| Job {
                scenario: s,
                seed,
                name: format!("{}-seed{seed}", s.name()),
            })),
            None => jobs.push(Job {
                scenario: s,
                seed: args.seed.or(s.file.seed).unwrap_or(DEFAULT_SEED),
                name: s.name(),
            }),
        }
    }
    Ok((jobs, skipped))
}

/// `run`, and with --watch again after every change to the files it read.
fn run_watching(args: &RunArgs) -> ExitCode {
    let code = run(args);
    if !args.watch {
        return code;
    }
    loop {
        println!("watching for changes (Ctrl-C stops)");
        let changed = pchat_sim::watch::wait_for_change(&args.paths);
        let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
        println!("changed: {}", names.join(", "));
        run(args);
    }
}

fn run(args: &RunArgs) -> ExitCode {
    let sel = match select(&args.paths, args.filter.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (jobs, mut entries) = match plan(args, &sel.scenarios) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let threads = args.jobs.unwrap_or(if args.target.is_some() {
        1
    } else {
        batch::default_jobs()
    });
    let mode = args
        .target
        .as_deref()
        .map_or("simulated".to_string(), |t| format!("live {t}"));
    println!(
        "running {} scenario run(s), {mode}, {threads} at once",
        jobs.len()
    );
    let bar = report::progress(jobs.len() as u64, "scenarios");
    // Cost estimate: clients x steps (many-clients first).
    let cost = |j: &Job<'_>| j.scenario.file.clients.len() * j.scenario.file.steps.len();
    let ran = batch::run_parallel(&jobs, threads, cost, |j| run_one(args, j), |_| bar.inc(1));
    bar.finish_and_clear();
    for e in &ran {
        if let Entry::Ran {
            report: r, replay, ..
        } = e
        {
            print_run(r, replay);
            write_run_outputs(args, r);
        }
    }
    entries.splice(0..0, ran);
    for e in &sel.broken {
        eprintln!("{e}");
        entries.push(Entry::Broken {
            file: e.path.display().to_string(),
            errors: e.to_string(),
        });
    }
    if let Some(file) = &args.reports.html {
        let dirs = (args.ladder.as_deref(), args.transcript.as_deref());
        if let Err(e) = write_html(&args.reports, file, &entries, dirs) {
            eprintln!("{e}");
        }
    }
    let code = finish(&args.reports, "run", &entries);
    if sel.broken.is_empty() {
        code
    } else {
        ExitCode::from(2)
    }
}

fn run_one(args: &RunArgs, job: &Job<'_>) -> Entry {
    let started = Instant::now();
    let s = job.scenario;
    let mut r = match &args.target {
        Some(t) => run_live_rooms(args, s, t, job.seed),
        None => run_sim(s, job.seed),
    };
    r.name = job.name.clone();
    Entry::Ran {
        replay: format!("pchat-sim run {} --seed {}", s.path.display(), r.seed),
        report: r,
        wall: started.elapsed(),
    }
}

/// A live run; with --room-admin, the scenario's rooms are created before it and
/// retired after it (pchat_sim::live_rooms).
fn run_live_rooms(args: &RunArgs, s: &Scenario, target: &str, seed: u64) -> RunReport {
    let admin = match (&args.room_admin, &args.http) {
        (Some(uri), Some(http)) if !s.file.rooms.is_empty() => pchat_sim::live_rooms::RoomAdmin {
            uri: uri.clone(),
            password: args.room_admin_password.clone(),
            sip: target.to_string(),
            http: http.clone(),
        },
        _ => return run_live_with(s, target, args.http.as_deref(), seed),
    };
    let ours = match pchat_sim::live_rooms::provision(&admin, &s.file.rooms) {
        Ok(ours) => ours,
        Err(e) => {
            let failure = format!("{}: creating its rooms: {e}", s.path.display());
            return RunReport::not_started(s, seed, failure);
        }
    };
    let mut r = run_live_with(s, target, args.http.as_deref(), seed);
    if let Err(e) = pchat_sim::live_rooms::retire(&admin, &ours) {
        r.failure
            .get_or_insert(format!("{}: retiring its rooms: {e}", s.path.display()));
    }
    r
}

/// --transcript, --show-ladder and --ladder of one run.
fn write_run_outputs(args: &RunArgs, r: &RunReport) {
    let mut outputs = Vec::new();
    if let Some(dir) = &args.transcript {
        outputs.push((dir.join(format!("{}.txt", r.name)), r.transcript.render()));
    }
    if args.show_ladder {
        print!("{}", pchat_sim::ladder::text(&r.transcript));
    }
    if let Some(dir) = &args.ladder {
        let text = pchat_sim::ladder::text(&r.transcript);
        outputs.push((dir.join(format!("{}.ladder.txt", r.name)), text));
        for (suffix, page) in pchat_sim::ladder::html_pages(&r.transcript, &r.name, &r.name) {
            outputs.push((dir.join(format!("{}{suffix}.html", r.name)), page));
        }
    }
    for (file, content) in outputs {
        if let Err(e) = write_file(&file, content.as_bytes()) {
            eprintln!("{e}");
        }
    }
}

fn replay(file: &Path, transcript: Option<&Path>, reports: &ReportArgs) -> ExitCode {
    let s = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let seed = s.file.seed.unwrap_or(DEFAULT_SEED);
    let started = Instant::now();
    let r = run_sim(&s, seed);
    let wall = started.elapsed();
    let replay = format!("pchat-sim replay {}", file.display());
    print_run(&r, &replay);
    if let Some(dir) = transcript {
        let out = dir.join(format!("{}.txt", r.name));
        if let Err(e) = write_file(&out, r.transcript.render().as_bytes()) {
            eprintln!("{e}");
        }
    }
    let entry = Entry::Ran {
        report: r,
        replay,
        wall,
    };
    finish(reports, "replay", &[entry])
}

fn explore_cmd(a: ExploreArgs) -> ExitCode {
    let base = match Scenario::load(&a.path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let runs = a
        .runs
        .unwrap_or(if a.duration.is_some() { 1_000_000 } else { 100 });
    let opts = ExploreOptions {
        runs,
        seed: a.seed,
        out_dir: a.out.clone(),
        planted_bug: a.plant_bug.clone(),
        max_shrink_iters: 512,
        deadline: a.duration.map(|d| started + d),
    };
    let seed = a.seed;
    println!(
        "exploring {} with {runs} random fault schedules, seed {seed}",
        a.path.display()
    );
    let bar = report::progress(u64::from(runs), "runs");
    let result = explore(&base, &opts, &|n| bar.set_position(n));
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let wall = started.elapsed();
    println!(
        "{} runs (shrinking included) in {:.1}s wall, {:.0}s simulated; {} steps failed under faults (allowed)",
        report.runs,
        wall.as_secs_f64(),
        report.simulated.as_secs_f64(),
        report.failed_steps
    );
    print_found(report.found.as_ref());
    let code = if report.found.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    let Some(file) = a.junit else {
        return code;
    };
    let entry = explore_entry(&base, seed, &report, wall);
    if let Err(e) = write_file(&file, report::junit("explore", &[entry]).as_bytes()) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    code
}

fn print_found(found: Option<&pchat_sim::explore::Found>) {
    let Some(found) = found else {
        println!("invariants held in every run");
        return;
    };
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
}

/// The JUnit entry of an exploration: its wall time; the minimal failure if any.
fn explore_entry(
    base: &Scenario,
    seed: u64,
    report: &pchat_sim::explore::ExploreReport,
    wall: std::time::Duration,
) -> Entry {
    let name = format!("explore {} --seed {seed}", base.name());
    let mut r = match &report.found {
        Some(f) => f.report.clone(),
        None => RunReport {
            name: name.clone(),
            seed,
            elapsed: report.simulated,
            ..RunReport::default()
        },
    };
    r.name = name;
    // Steps fail under random faults by design; explore judges the invariants only.
    r.step_failures.clear();
    r.elapsed = report.simulated;
    let replay = report.found.as_ref().map_or(String::new(), |f| {
        format!("pchat-sim replay {}", f.file.display())
    });
    Entry::Ran {
        report: r,
        replay,
        wall,
    }
}

fn finish(reports: &ReportArgs, suite: &str, entries: &[Entry]) -> ExitCode {
    print!("{}", report::summary_table(entries));
    if let Err(e) = write_reports(reports, suite, entries) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    if entries.iter().any(Entry::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
