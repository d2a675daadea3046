//! Runs of many scenario files: choosing them (files, directories, globs, `--filter` on
//! names and `tags`), giving each a unique name, seed sweeps (`--seeds 1..20`), and
//! running them on `-j N` threads with the results in a fixed order (each simulated run
//! is deterministic on its own, so the order of completion changes nothing in them).

use crate::scenario::{discover, Scenario, ScenarioError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The scenarios a command will run, the files that failed to load, and warnings.
#[derive(Debug, Default)]
pub struct Selection {
    /// Loaded scenarios, in path order, each with a unique `name`.
    pub scenarios: Vec<Scenario>,
    /// Files that did not load (each fails by itself; the others still run).
    pub broken: Vec<ScenarioError>,
    /// What the user should know (renamed duplicates).
    pub warnings: Vec<String>,
}

/// The files named by `paths`: files, directories (their `*.toml`) and glob patterns
/// (`scenarios/fault-*.toml`), in the order given, each once. Errors: a path that does
/// not exist or a pattern that matches nothing.
pub fn files(paths: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        let found: Vec<PathBuf> = if p.contains(['*', '?', '[']) {
            let mut v: Vec<PathBuf> = glob::glob(p)
                .map_err(|e| format!("{p}: not a glob pattern: {e}"))?
                .filter_map(Result::ok)
                .filter(|f| f.is_file())
                .collect();
            v.sort();
            v
        } else {
            discover(std::path::Path::new(p)).map_err(|e| format!("{p}: {e}"))?
        };
        if found.is_empty() {
            return Err(format!("{p}: no *.toml scenario files"));
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// Whether `s` passes `filter`: comma-separated terms; a term matches a scenario whose
/// name contains it or that has it as a tag; `!term` excludes. A scenario is kept when
/// it matches at least one positive term (or there are none) and no negative one.
pub fn matches_filter(s: &Scenario, filter: &str) -> bool {
    let name = s.name();
    let hit = |t: &str| name.contains(t) || s.file.tags.iter().any(|tag| tag == t);
    let terms: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let (neg, pos): (Vec<&str>, Vec<&str>) = terms.iter().partition(|t| t.starts_with('!'));
    let excluded = neg.iter().any(|t| hit(&t[1..]));
    let included = pos.is_empty() || pos.iter().any(|t| hit(t));
    included && !excluded
}

/// Loads `paths` (see [`files`]), keeps what passes `filter`, and makes names unique:
/// a second scenario with a name already taken runs as `<name>-2` (then `-3`, ...),
/// with a warning, so that its transcript, pcap, ladder and JUnit case are its own.
pub fn select(paths: &[String], filter: Option<&str>) -> Result<Selection, String> {
    let mut sel = Selection::default();
    let mut taken: Vec<(String, PathBuf)> = Vec::new();
    for f in files(paths)? {
        let mut s = match Scenario::load(&f) {
            Ok(s) => s,
            Err(e) => {
                sel.broken.push(e);
                continue;
            }
        };
        if filter.is_some_and(|flt| !matches_filter(&s, flt)) {
            continue;
        }
        let name = s.name();
        if let Some((_, first)) = taken.iter().find(|(n, _)| *n == name) {
            let unique = (2..)
                .map(|i| format!("{name}-{i}"))
                .find(|n| !taken.iter().any(|(t, _)| t == n))
                .unwrap_or_default();
            sel.warnings.push(format!(
                "warning: {} and {} are both named {name:?}; the second runs as {unique:?}",
                first.display(),
                f.display()
            ));
            s.file.name = Some(unique);
        }
        taken.push((s.name(), f));
        sel.scenarios.push(s);
    }
    Ok(sel)
}

/// The seeds of `--seeds`: `A..B` (B included), `A..=B`, a list `1,5,9`, or one seed.
/// Errors: not numbers, an empty range, more than 100,000 seeds.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("--seeds {text:?}: expected a seed number, got {t:?}"))
    };
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..") {
        let (a, b) = (num(a)?, num(b.trim_start_matches('='))?);
        if b < a || b - a >= 100_000 {
            return Err(format!(
                "--seeds {text:?}: expected a range A..B with A <= B and at most 100000 seeds"
            ));
        }
        (a..=b).collect()
    } else {
        text.split(',').map(num).collect::<Result<_, _>>()?
    };
    if seeds.is_empty() {
        return Err(format!("--seeds {text:?}: no seed"));
    }
    Ok(seeds)
}

/// The default of `-j`: the machine's cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` on every item on `threads` threads, the costliest (by `cost`) first so
/// that a long run does not start last; `done` is called as each finishes. Returns the
/// results in the items' order.
pub fn run_parallel<I: Sync, T: Send>(
    items: &[I],
    threads: usize,
    cost: impl Fn(&I) -> usize,
    work: impl Fn(&I) -> T + Sync,
    done: impl Fn(&T) + Sync,
) -> Vec<T> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&items[i])));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let r = work(&items[i]);
                    done(&r);
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        assert_eq!(parse_seeds("1..3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_seeds("1..=2").unwrap(), vec![1, 2]);
        assert_eq!(parse_seeds("7,9").unwrap(), vec![7, 9]);
        assert!(parse_seeds("3..1").is_err());
        assert!(parse_seeds("x").unwrap_err().contains("\"x\""));
    }

    #[test]
    fn parallel_keeps_the_order() {
        let items: Vec<u64> = (0..20).collect();
        let out = run_parallel(&items, 3, |i| (*i % 7) as usize, |i| i * 2, |_| {});
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn filter_terms() {
        let s = Scenario::parse(
            "name = \"fault-crash\"\ntags = [\"slow\"]\n[[client]]\nname = \"u\"\nuri = \"sip:u@contoso.com\"\n[[step]]\nclient = \"u\"\naction = \"subscribe\"\n",
            std::path::Path::new("x.toml"),
        )
        .unwrap();
        assert!(matches_filter(&s, "fault"));
        assert!(matches_filter(&s, "slow"));
        assert!(!matches_filter(&s, "!slow"));
        assert!(!matches_filter(&s, "join"));
        assert!(matches_filter(&s, "join,crash"));
    }
}
