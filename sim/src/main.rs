//! `pchat-sim`: runs QA scenario files in the deterministic simulator or against a live
//! server.
//!
//! ```text
//! pchat-sim run scenarios/                       # every *.toml, simulated
//! pchat-sim run scenarios/join-and-post.toml --seed 7 --transcript out/
//! pchat-sim run scenarios/ --target 127.0.0.1:5060   # real TCP to a running server
//! pchat-sim check scenarios/                     # parse and validate only
//! ```
//! Exit status: 0 all passed, 1 a scenario failed, 2 bad usage or a bad scenario file.

use clap::{Parser, Subcommand};
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
    },
    /// Parse and validate scenario files without running them.
    Check {
        /// Scenario file or directory.
        path: PathBuf,
    },
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
            http,
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
            for s in &scenarios {
                let seed = seed.or(s.file.seed).unwrap_or(DEFAULT_SEED);
                let r = match &target {
                    Some(t) => run_live_with(s, t, http.as_deref(), seed),
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
            println!("{} passed, {} failed", reports.len() - failed, failed);
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
