//! `pchat-sim explore`: random fault schedules around a scenario (proptest strategies),
//! the invariants ([`crate::invariants`]) checked after each run, and on a failure the
//! schedule shrunk to a minimal one and written as a replayable scenario file (the base
//! scenario + `[[fault]]` entries + `seed`), which `pchat-sim replay FILE` reproduces
//! exactly (same file, same seed: same transcript).
//!
//! Each generated case is the simulation seed plus up to [`MAX_FAULTS`] faults, each
//! placed before one of the base scenario's steps: overload, store-fail (io | busy),
//! disk-full, partition of one client, latency, loss, crash with restart.

use crate::runner::{run_sim_with, RunReport, SimOptions};
use crate::scenario::{Scenario, ScenarioError};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most faults in one generated schedule.
pub const MAX_FAULTS: usize = 4;

/// One generated fault.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Forced overload (INFO 503) for `ms`.
    Overload {
        /// Window, ms.
        ms: u64,
    },
    /// Store failure for `ms`.
    StoreFail {
        /// busy instead of io.
        busy: bool,
        /// Window, ms.
        ms: u64,
    },
    /// Disk full for `ms`.
    DiskFull {
        /// Window, ms.
        ms: u64,
    },
    /// Partition between the server and client number `client` for `ms`.
    Partition {
        /// Index into the scenario's clients.
        client: usize,
        /// Window, ms.
        ms: u64,
    },
    /// Latency `min_ms..min_ms+spread_ms` for `ms`.
    Latency {
        /// Least delay, ms.
        min_ms: u64,
        /// Spread above it, ms.
        spread_ms: u64,
        /// Window, ms.
        ms: u64,
    },
    /// Message loss of `percent`% for `ms`.
    Loss {
        /// Rate in percent.
        percent: u32,
        /// Window, ms.
        ms: u64,
    },
    /// Server crash, restarted after `ms`.
    Crash {
        /// Downtime, ms.
        ms: u64,
    },
}

/// A fault placed before a step (1-based; steps + 1 = after the last).
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedFault {
    /// `before_step` of the `[[fault]]`.
    pub before_step: usize,
    /// What.
    pub kind: FaultKind,
}

/// A generated case: simulation seed and fault schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// turmoil / identifier seed.
    pub seed: u64,
    /// The faults.
    pub faults: Vec<PlacedFault>,
}

fn kind_strategy(clients: usize) -> impl Strategy<Value = FaultKind> {
    let ms = || 50u64..4000;
    prop_oneof![
        ms().prop_map(|ms| FaultKind::Overload { ms }),
        (any::<bool>(), ms()).prop_map(|(busy, ms)| FaultKind::StoreFail { busy, ms }),
        ms().prop_map(|ms| FaultKind::DiskFull { ms }),
        (0..clients.max(1), ms()).prop_map(|(client, ms)| FaultKind::Partition { client, ms }),
        (0u64..1500, 0u64..2500, ms()).prop_map(|(min_ms, spread_ms, ms)| FaultKind::Latency {
            min_ms,
            spread_ms,
            ms
        }),
        (1u32..30, 50u64..1500).prop_map(|(percent, ms)| FaultKind::Loss { percent, ms }),
        (10u64..2000).prop_map(|ms| FaultKind::Crash { ms }),
    ]
}

/// The proptest strategy of cases around a scenario with `steps` steps and `clients`
/// clients.
pub fn case_strategy(steps: usize, clients: usize) -> impl Strategy<Value = Case> {
    let fault = (1..=steps + 1, kind_strategy(clients))
        .prop_map(|(before_step, kind)| PlacedFault { before_step, kind });
    (
        0u64..1_000_000,
        proptest::collection::vec(fault, 0..=MAX_FAULTS),
    )
        .prop_map(|(seed, faults)| Case { seed, faults })
}

/// What `explore` was asked to do.
#[derive(Debug, Clone)]
pub struct ExploreOptions {
    /// Cases to run (`--runs`).
    pub runs: u32,
    /// Seed of the case generator (`--seed`).
    pub seed: u64,
    /// Where a minimal failing schedule is written.
    pub out_dir: PathBuf,
    /// Plant a known bug (`scenario::PLANTED_BUGS`) - for testing this tool.
    pub planted_bug: Option<String>,
    /// Most shrink iterations.
    pub max_shrink_iters: u32,
    /// Start no new schedule after this instant (`--duration`); shrinking a failure
    /// found before it still finishes.
    pub deadline: Option<std::time::Instant>,
}

/// A minimal failing schedule that was found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The replayable scenario file written.
    pub file: PathBuf,
    /// The minimal case.
    pub case: Case,
    /// Its violations (and the report of its run).
    pub report: RunReport,
}

/// How an exploration went.
#[derive(Debug, Clone)]
pub struct ExploreReport {
    /// Cases run (including shrinking).
    pub runs: u64,
    /// Simulated time over all runs.
    pub simulated: Duration,
    /// Posts acknowledged etc. are in the run reports; here: steps that failed under
    /// faults (expected; not a violation).
    pub failed_steps: u64,
    /// The minimal failure, if one was found.
    pub found: Option<Found>,
}

/// The scenario text for `case` around `base`: the base file with `seed`, `name`,
/// `invariants`, `keep_going` (and `planted_bug`) set, `allow_fail = true` on every
/// step (steps fail under random faults by design; the invariants judge, also when the
/// file is replayed or kept as a regression scenario), and one `[[fault]]` per fault.
pub fn case_text(base: &Scenario, case: &Case, planted_bug: Option<&str>, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "name = {:?}", format!("{}-found", base.name()));
    let _ = writeln!(out, "seed = {}", case.seed);
    out.push_str("invariants = true\nkeep_going = true\n");
    if let Some(b) = planted_bug {
        let _ = writeln!(out, "planted_bug = {b:?}");
    }
    let mut in_tables = false;
    for line in base.source.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_tables = true;
        }
        let key = t.split('=').next().unwrap_or("").trim();
        let overridden = ["name", "seed", "invariants", "keep_going", "planted_bug"];
        if !in_tables && overridden.contains(&key) && t.contains('=') {
            continue;
        }
        if key == "allow_fail" && t.contains('=') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if t.starts_with("[[step]]") {
            // Under random faults steps fail by design; the invariants judge the run.
            out.push_str("allow_fail = true\n");
        }
    }
    let clients: Vec<&str> = base.file.clients.iter().map(|c| c.name.as_str()).collect();
    for f in &case.faults {
        let _ = write!(out, "\n[[fault]]\nbefore_step = {}\n", f.before_step);
        let body = match &f.kind {
            FaultKind::Overload { ms } => format!("action = \"overload\"\nms = {ms}\n"),
            FaultKind::StoreFail { busy, ms } => format!(
                "action = \"store-fail\"\nerror = \"{}\"\nms = {ms}\n",
                if *busy { "busy" } else { "io" }
            ),
            FaultKind::DiskFull { ms } => format!("action = \"disk-full\"\nms = {ms}\n"),
            FaultKind::Partition { client, ms } => format!(
                "action = \"partition\"\nhosts = [{:?}]\nms = {ms}\n",
                clients.get(*client).copied().unwrap_or_default()
            ),
            FaultKind::Latency {
                min_ms,
                spread_ms,
                ms,
            } => format!(
                "action = \"latency\"\nmin_ms = {min_ms}\nmax_ms = {}\nms = {ms}\n",
                min_ms + spread_ms
            ),
            FaultKind::Loss { percent, ms } => format!(
                "action = \"loss\"\nrate = {}\nms = {ms}\n",
                f64::from(*percent) / 100.0
            ),
            FaultKind::Crash { ms } => format!("action = \"crash\"\nms = {ms}\n"),
        };
        out.push_str(&body);
    }
    out
}

/// Runs one case; Ok(report) or the scenario error if the generated file is invalid.
pub fn run_case(
    base: &Scenario,
    case: &Case,
    planted_bug: Option<&str>,
) -> Result<(String, RunReport), ScenarioError> {
    let text = case_text(base, case, planted_bug, "");
    let s = Scenario::parse(&text, &base.path)?;
    Ok((
        text,
        run_sim_with(&s, case.seed, &SimOptions { invariants: true }),
    ))
}

/// Explores `base` (see the module docs). `progress` is called after every run with the
/// number of runs so far. Errors: the minimal case could not be written.
pub fn explore(
    base: &Scenario,
    opts: &ExploreOptions,
    progress: &dyn Fn(u64),
) -> Result<ExploreReport, String> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&opts.seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let config = Config {
        cases: opts.runs,
        failure_persistence: None,
        max_shrink_iters: opts.max_shrink_iters,
        max_shrink_time: 0,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let runs = Cell::new(0u64);
    let simulated = Cell::new(Duration::ZERO);
    let failed_steps = Cell::new(0u64);
    let last_failure: RefCell<Option<(Case, RunReport)>> = RefCell::new(None);
    let strategy = case_strategy(base.file.steps.len(), base.file.clients.len());
    // `--plant-bug`, else the base file's own `planted_bug` (case_text rewrites it).
    let bug = opts.planted_bug.as_deref().or(base
        .file
        .planted_bug
        .as_ref()
        .map(|b| b.get_ref().as_str()));
    let result = runner.run(&strategy, |case| {
        let searching = last_failure.borrow().is_none();
        if searching
            && opts
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Ok(());
        }
        let (_, report) =
            run_case(base, &case, bug).map_err(|e| TestCaseError::fail(e.to_string()))?;
        runs.set(runs.get() + 1);
        simulated.set(simulated.get() + report.elapsed);
        failed_steps.set(
            failed_steps.get()
                + (report.step_failures.len() + report.allowed_failures.len()) as u64,
        );
        progress(runs.get());
        if report.violations.is_empty() && report.failure.is_none() {
            return Ok(());
        }
        let why = report
            .violations
            .first()
            .cloned()
            .or_else(|| report.failure.clone())
            .unwrap_or_default();
        *last_failure.borrow_mut() = Some((case, report));
        Err(TestCaseError::fail(why))
    });
    let found = match result {
        Ok(()) => None,
        Err(TestError::Abort(r)) => return Err(format!("exploration aborted: {r}")),
        Err(TestError::Fail(_, minimal)) => {
            let _ = last_failure.borrow_mut().take();
            Some(write_found(base, opts, minimal, bug)?)
        }
    };
    Ok(ExploreReport {
        runs: runs.get(),
        simulated: simulated.get(),
        failed_steps: failed_steps.get(),
        found,
    })
}

/// Runs the minimal failing case once more and writes it, with its seed and
/// violations in the header, as a scenario file under `opts.out_dir`.
fn write_found(
    base: &Scenario,
    opts: &ExploreOptions,
    minimal: Case,
    bug: Option<&str>,
) -> Result<Found, String> {
    let (_, report) = run_case(base, &minimal, bug).map_err(|e| e.to_string())?;
    let mut header = format!(
        "Found by: pchat-sim explore --runs {} --seed {} {}\nMinimal fault schedule after shrinking; reproduce with: pchat-sim replay FILE\n",
        opts.runs,
        opts.seed,
        base.path.display()
    );
    for v in &report.violations {
        let _ = writeln!(header, "violation: {v}");
    }
    if let Some(f) = &report.failure {
        let _ = writeln!(header, "failure: {f}");
    }
    let text = case_text(base, &minimal, bug, &header);
    std::fs::create_dir_all(&opts.out_dir)
        .map_err(|e| format!("{}: {e}", opts.out_dir.display()))?;
    let file = opts
        .out_dir
        .join(format!("{}-explore-seed{}.toml", base.name(), opts.seed));
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Found {
        file,
        case: minimal,
        report,
    })
}

/// Where explore writes by default: `explore-out/` in the current directory.
pub fn default_out_dir() -> PathBuf {
    Path::new("explore-out").to_path_buf()
}
