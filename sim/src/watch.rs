//! `pchat-sim run --watch` (issue 17): after a run, watch the scenario files (and the
//! CSV files they name in `[data]`) and run again when one changes, appears or goes.
//! Polls modification times ([`POLL`]) with the standard library only: it works the
//! same on every file system (network mounts and containers included), and a
//! scenario directory is small.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(300);

/// Modification times of watched files (`None`: the file is missing).
pub type Snapshot = BTreeMap<PathBuf, Option<SystemTime>>;

/// The files a run of `paths` reads: the scenario files they name (files, directories,
/// globs, as `run` takes them) and each scenario's `[data]` CSV files. Paths that do
/// not resolve are watched as they are (so that creating them triggers a run).
pub fn watched_files(paths: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match crate::batch::files(paths) {
        Ok(f) => f,
        Err(_) => paths.iter().map(PathBuf::from).collect(),
    };
    let mut data = Vec::new();
    for f in &out {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let Ok(table) = text.parse::<toml::Table>() else {
            continue;
        };
        let dir = f.parent().unwrap_or(Path::new(""));
        if let Some(toml::Value::Table(d)) = table.get("data") {
            data.extend(d.values().filter_map(|v| v.as_str()).map(|p| dir.join(p)));
        }
    }
    out.extend(data);
    // Directories themselves: a new file in one changes their time.
    out.extend(paths.iter().map(PathBuf::from).filter(|p| p.is_dir()));
    out.sort();
    out.dedup();
    out
}

/// The modification times of `files` now.
pub fn snapshot(files: &[PathBuf]) -> Snapshot {
    files
        .iter()
        .map(|f| {
            (
                f.clone(),
                std::fs::metadata(f).and_then(|m| m.modified()).ok(),
            )
        })
        .collect()
}

/// The files whose time differs between `before` and `after` (or that are in only one).
pub fn changed(before: &Snapshot, after: &Snapshot) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = after
        .iter()
        .filter(|(f, t)| before.get(*f) != Some(t))
        .map(|(f, _)| f.clone())
        .collect();
    out.extend(before.keys().filter(|f| !after.contains_key(*f)).cloned());
    out
}

/// Blocks until a file watched for `paths` changes; returns the changed files.
pub fn wait_for_change(paths: &[String]) -> Vec<PathBuf> {
    let before = snapshot(&watched_files(paths));
    loop {
        std::thread::sleep(POLL);
        let now = snapshot(&watched_files(paths));
        let diff = changed(&before, &now);
        if !diff.is_empty() {
            return diff;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_new_or_removed_file_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let csv = dir.path().join("users.csv");
        std::fs::write(&a, "[data]\nusers = \"users.csv\"\n").unwrap();
        std::fs::write(&csv, "name\nx\n").unwrap();
        let paths = vec![dir.path().display().to_string()];
        let files = watched_files(&paths);
        assert!(files.contains(&a) && files.contains(&csv), "{files:?}");
        let before = snapshot(&files);
        assert!(changed(&before, &snapshot(&files)).is_empty());
        std::fs::remove_file(&csv).unwrap();
        assert!(changed(&before, &snapshot(&files)).contains(&csv));
        let b = dir.path().join("b.toml");
        std::fs::write(&b, "x").unwrap();
        let grown = snapshot(&watched_files(&paths));
        assert!(changed(&before, &grown).contains(&b));
    }
}
