//! Reports for people and CI: a progress bar (indicatif; hidden when stderr is not a
//! terminal or `CI` is set), a summary table, JUnit XML (quick-junit) and pcap files.

use crate::runner::RunReport;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::io::IsTerminal;

/// A progress bar over `len` items, drawn on stderr only for a person at a terminal
/// (hidden when stderr is not a TTY or `CI` is `true`/`1`).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if ci || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

/// The progress bar's message while scenario `name` runs: simulated time so far and
/// the real-time factor (simulated s per wall s), e.g. `big: 312.0 s simulated, 57.3x real time`.
pub fn sim_progress(name: &str, p: crate::sim_setup::Progress) -> String {
    let factor = p.simulated.as_secs_f64() / p.wall.as_secs_f64().max(1e-9);
    format!(
        "{name}: {:.1} s simulated, {factor:.1}x real time",
        p.simulated.as_secs_f64()
    )
}

/// The summary table printed at the end of `run`/`replay`: one row per scenario.
pub fn summary_table(reports: &[RunReport]) -> String {
    let mut out = format!(
        "{:<28} {:>8} {:>7} {:>9} {:>10} {:>10}  result\n",
        "scenario", "seed", "steps", "messages", "sim time", "violations"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<28} {:>8} {:>7} {:>9} {:>9.3}s {:>10}  {}\n",
            r.name,
            r.seed,
            format!("{}/{}", r.steps_passed, r.steps_total),
            r.transcript.message_count(),
            r.elapsed.as_secs_f64(),
            r.violations.len(),
            if r.passed() { "ok" } else { "FAIL" }
        ));
    }
    let failed = reports.iter().filter(|r| !r.passed()).count();
    out.push_str(&format!(
        "{} passed, {} failed\n",
        reports.len() - failed,
        failed
    ));
    out
}

/// JUnit XML for CI dashboards: one test suite `suite`, one test case per scenario run
/// (classname `pchat-sim`, time = simulated time); a failure's message is its first
/// failure or violation, its description all of them plus the replay command.
pub fn junit(suite: &str, reports: &[(RunReport, String)]) -> String {
    let mut report = Report::new("pchat-sim");
    let mut ts = TestSuite::new(suite.to_string());
    for (r, replay) in reports {
        let status = if r.passed() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let first = r
                .failure
                .clone()
                .or_else(|| r.violations.first().cloned())
                .unwrap_or_default();
            s.set_message(first);
            s.set_type(if r.violations.is_empty() {
                "step failed"
            } else {
                "invariant violated"
            });
            let mut all: Vec<String> = r.failure.iter().cloned().collect();
            all.extend(r.violations.iter().cloned());
            all.push(format!("replay: {replay}"));
            s.set_description(all.join("\n"));
            s
        };
        let mut tc = TestCase::new(r.name.clone(), status);
        tc.set_classname("pchat-sim");
        tc.set_time(r.elapsed);
        if !r.step_failures.is_empty() {
            tc.set_system_out(r.step_failures.join("\n"));
        }
        ts.add_test_case(tc);
    }
    report.add_test_suite(ts);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot serialize JUnit report: {e} -->"))
}
