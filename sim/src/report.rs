//! Reports for people and CI: a progress bar (indicatif; hidden when stderr is not a
//! terminal or `CI` is set), a summary table, JUnit XML (quick-junit) and pcap files.

use crate::runner::RunReport;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::io::IsTerminal;
use std::time::Duration;

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

/// One line of a run's report: a scenario that ran, was skipped, or could not load.
#[derive(Debug, Clone)]
pub enum Entry {
    /// It ran.
    Ran {
        /// How it went.
        report: RunReport,
        /// The command that replays it.
        replay: String,
        /// Wall-clock time the run took.
        wall: Duration,
    },
    /// It was not run (e.g. simulator-only under `--target`).
    Skipped {
        /// Scenario name.
        name: String,
        /// Why.
        why: String,
    },
    /// Its file did not load: every error of the file.
    Broken {
        /// The file.
        file: String,
        /// The errors, one per line (`file:line:column: message`).
        errors: String,
    },
}

impl Entry {
    /// Whether this entry fails the run (a failed run or a broken file).
    pub fn failed(&self) -> bool {
        match self {
            Entry::Ran { report, .. } => !report.passed(),
            Entry::Skipped { .. } => false,
            Entry::Broken { .. } => true,
        }
    }
}

/// What failed in `r`, first to last: the stopping failure, failed steps (kept going),
/// violations.
pub fn problems(r: &RunReport) -> Vec<String> {
    let mut all: Vec<String> = r.failure.iter().cloned().collect();
    all.extend(r.step_failures.iter().cloned());
    all.extend(
        r.violations
            .iter()
            .map(|v| match v.starts_with("threshold ") {
                true => format!("{v} (not met)"),
                false => format!("invariant violated: {v}"),
            }),
    );
    all
}

/// The summary table printed at the end of `run`/`replay`: one row per scenario.
pub fn summary_table(entries: &[Entry]) -> String {
    let mut out = format!(
        "{:<28} {:>8} {:>7} {:>9} {:>10} {:>8} {:>10}  result\n",
        "scenario", "seed", "steps", "messages", "sim time", "wall", "violations"
    );
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for e in entries {
        match e {
            Entry::Ran {
                report: r, wall, ..
            } => {
                let steps_failed = r.step_failures.len() + usize::from(r.failure.is_some());
                let result = match (r.passed(), steps_failed) {
                    (true, _) => "ok".to_string(),
                    (false, 0) => "FAIL".to_string(),
                    (false, n) => format!("FAIL ({n} step(s) failed)"),
                };
                out.push_str(&format!(
                    "{:<28} {:>8} {:>7} {:>9} {:>9.3}s {:>7.2}s {:>10}  {result}\n",
                    r.name,
                    r.seed,
                    format!("{}/{}", r.steps_passed, r.steps_total),
                    r.transcript.message_count(),
                    r.elapsed.as_secs_f64(),
                    wall.as_secs_f64(),
                    r.violations.len(),
                ));
                if r.passed() {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            Entry::Skipped { name, .. } => {
                out.push_str(&format!("{name:<28} {:>57}  skipped\n", ""));
                skipped += 1;
            }
            Entry::Broken { file, .. } => {
                out.push_str(&format!("{file:<28} {:>57}  BAD FILE\n", ""));
                failed += 1;
            }
        }
    }
    out.push_str(&format!(
        "{passed} passed, {failed} failed, {skipped} skipped\n"
    ));
    out
}

/// JUnit XML for CI dashboards: one test suite `suite`, one test case per entry
/// (classname `pchat-sim`, time = wall-clock time; the simulated time is the property
/// `simulated_s`). A failure's message is the first problem, its description all of
/// them (failed steps under `keep_going` included) and the replay command; steps allowed
/// to fail go to system-out; skipped scenarios are skipped cases with their reason; a
/// file that did not load is an error case with its errors.
pub fn junit(suite: &str, entries: &[Entry]) -> String {
    let mut report = Report::new("pchat-sim");
    let mut ts = TestSuite::new(suite.to_string());
    for e in entries {
        ts.add_test_case(junit_case(e));
    }
    report.add_test_suite(ts);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot serialize JUnit report: {e} -->"))
}

fn junit_case(e: &Entry) -> TestCase {
    let mut tc = match e {
        Entry::Ran {
            report: r,
            replay,
            wall,
        } => {
            let status = if r.passed() {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let mut all = problems(r);
                s.set_message(all.first().cloned().unwrap_or_default());
                s.set_type(if r.violations.is_empty() {
                    "step failed"
                } else {
                    "invariant violated"
                });
                all.push(format!("replay: {replay}"));
                s.set_description(all.join("\n"));
                s
            };
            let mut tc = TestCase::new(r.name.clone(), status);
            tc.set_time(*wall);
            tc.add_property(quick_junit::Property::new(
                "simulated_s",
                format!("{:.3}", r.elapsed.as_secs_f64()),
            ));
            if !r.allowed_failures.is_empty() {
                let lines: Vec<String> = r
                    .allowed_failures
                    .iter()
                    .map(|f| format!("(allowed to fail) {f}"))
                    .collect();
                tc.set_system_out(lines.join("\n"));
            }
            tc
        }
        Entry::Skipped { name, why } => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(why.clone());
            TestCase::new(name.clone(), s)
        }
        Entry::Broken { file, errors } => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(errors.lines().next().unwrap_or_default().to_string());
            s.set_type("bad scenario file");
            s.set_description(errors.clone());
            TestCase::new(file.clone(), s)
        }
    };
    tc.set_classname("pchat-sim");
    tc
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One self-contained HTML page summarizing a whole run: a pass/fail table with seeds,
/// steps, messages, simulated and wall time, the problems of each failed scenario, and
/// the links `links(name)` gives (label, href) - its ladder, transcript, pcap.
pub fn html_summary(
    title: &str,
    entries: &[Entry],
    links: &dyn Fn(&str) -> Vec<(String, String)>,
) -> String {
    let failed = entries.iter().filter(|e| e.failed()).count();
    let mut rows = String::new();
    for e in entries {
        let (name, seed, steps, msgs, sim, wall, result, details) = match e {
            Entry::Ran {
                report: r, wall, ..
            } => (
                r.name.clone(),
                r.seed.to_string(),
                format!("{}/{}", r.steps_passed, r.steps_total),
                r.transcript.message_count().to_string(),
                format!("{:.3} s", r.elapsed.as_secs_f64()),
                format!("{:.2} s", wall.as_secs_f64()),
                if r.passed() { "ok" } else { "FAIL" },
                problems(r).join("\n"),
            ),
            Entry::Skipped { name, why } => (
                name.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "skipped",
                why.clone(),
            ),
            Entry::Broken { file, errors } => (
                file.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "BAD FILE",
                errors.clone(),
            ),
        };
        let colour = match result {
            "ok" => "#dfd",
            "skipped" => "#eee",
            _ => "#fdd",
        };
        let anchors: Vec<String> = links(&name)
            .into_iter()
            .map(|(label, href)| format!(r#"<a href="{}">{}</a>"#, esc(&href), esc(&label)))
            .collect();
        rows.push_str(&format!(
            "<tr style=\"background:{colour}\"><td>{}</td><td>{seed}</td><td>{steps}</td><td>{msgs}</td><td>{sim}</td><td>{wall}</td><td>{result}</td><td>{}</td><td><pre>{}</pre></td></tr>\n",
            esc(&name),
            anchors.join(" "),
            esc(&details)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:3px 6px;vertical-align:top}}pre{{margin:0;white-space:pre-wrap}}</style></head>\
         <body><h1>{t}</h1><p>{} scenario(s), {failed} failed.</p><table>\
         <tr><th>scenario</th><th>seed</th><th>steps</th><th>messages</th><th>sim time</th><th>wall</th><th>result</th><th>outputs</th><th>problems</th></tr>\n{rows}</table></body></html>\n",
        entries.len(),
        t = esc(title)
    )
}
