//! No import cycles between the files of `server/src` and `sim/src` (issue 11, point 3;
//! ARCHITECTURE.md "Layers"). The scan is the one of `shared/tools/rust_cycles.py`, in
//! Rust so that `cargo test` runs it: for each file, the files it names through
//! `use crate::…`, `crate::a::b` paths in code, `use crate::{a::X, b::Y}` and `super::`
//! paths (comments and everything from the first `#[cfg(test)]` on are ignored; test
//! files - `tests.rs`, `*_tests.rs`, `tests/` - are left out); a cycle is a strongly
//! connected group of more than one file.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["cmd", "join"]`; `[]` for lib.rs/main.rs) -> file.
type Modules = BTreeMap<Vec<String>, PathBuf>;

/// Cycles of `sim/src` that exist today and are being removed by the simulator's own
/// change (issue 11, simulator points): each entry is one cycle's files, sorted. Empty
/// this list when they are gone; a cycle not listed here fails the test.
const KNOWN_SIM_CYCLES: &[&[&str]] = &[];

fn modules(src: &Path) -> Modules {
    let mut out = Modules::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let Ok(rel) = path.strip_prefix(src) else {
                continue;
            };
            let Some(rel) = rel.to_str().and_then(|r| r.strip_suffix(".rs")) else {
                continue;
            };
            let mut m: Vec<String> = rel.split('/').map(str::to_owned).collect();
            if matches!(m.last().map(String::as_str), Some("lib" | "main" | "mod")) {
                m.pop();
            }
            out.insert(m, path);
        }
    }
    out
}

fn is_test(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs" || name.ends_with("_tests.rs") || path.to_string_lossy().contains("/tests/")
}

/// The longest prefix of `path` that is a module (a file).
fn resolve(mods: &Modules, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| mods.contains_key(p))
}

fn edges(mods: &Modules) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let comment = Regex::new(r"//[^\n]*").unwrap();
    let crate_path = Regex::new(r"\bcrate((?:::\w+)+)").unwrap();
    let super_path = Regex::new(r"\b((?:super::)+)((?:\w+::)*\w+)").unwrap();
    let grouped = Regex::new(r"\buse\s+crate::\{([^}]*)\}").unwrap();
    let mut g = BTreeMap::new();
    for (m, p) in mods {
        let targets: &mut BTreeSet<Vec<String>> = g.entry(m.clone()).or_default();
        if is_test(p) {
            continue;
        }
        let text = std::fs::read_to_string(p).expect("read source");
        let text = comment.replace_all(&text, "");
        let text = match text.find("#[cfg(test)]") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let mut add = |path: Vec<String>| {
            if let Some(t) = resolve(mods, &path) {
                if &t != m && !t.is_empty() {
                    targets.insert(t);
                }
            }
        };
        let segs = |s: &str| -> Vec<String> {
            s.split("::")
                .filter(|x| !x.is_empty() && *x != "self")
                .map(|x| x.trim().to_owned())
                .collect()
        };
        for c in crate_path.captures_iter(text) {
            add(segs(&c[1]));
        }
        let is_mod_rs = p.file_name().is_some_and(|n| n == "mod.rs");
        for c in super_path.captures_iter(text) {
            let ups = c[1].matches("super::").count();
            let mut base = m.clone();
            if is_mod_rs {
                base.push("_".into());
            }
            base.truncate(base.len().saturating_sub(ups));
            base.extend(segs(&c[2]));
            add(base);
        }
        for c in grouped.captures_iter(text) {
            for part in c[1].split(',') {
                add(segs(part.trim()));
            }
        }
    }
    g
}

/// Tarjan's strongly connected components of more than one node.
fn sccs(g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct T<'a> {
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        on: BTreeSet<&'a Vec<String>>,
        stack: Vec<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            let g = self.g;
            for w in g.get(v).into_iter().flatten() {
                let Some((w, _)) = g.get_key_value(w) else {
                    continue;
                };
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}

/// The import cycles of the crate source directory `src`: each as its files' paths
/// relative to `src`, sorted; the list sorted.
fn cycles(src: &Path) -> Vec<Vec<String>> {
    let mods = modules(src);
    let mut out: Vec<Vec<String>> = sccs(&edges(&mods))
        .into_iter()
        .map(|comp| {
            let mut files: Vec<String> = comp
                .iter()
                .map(|m| {
                    let p = &mods[m];
                    p.strip_prefix(src)
                        .unwrap_or(p)
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            files.sort();
            files
        })
        .collect();
    out.sort();
    out
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn server_src_has_no_import_cycles() {
    let found = cycles(&workspace().join("server/src"));
    assert!(found.is_empty(), "import cycles in server/src: {found:?}");
}

#[test]
fn sim_src_has_no_import_cycles_but_the_known_ones() {
    let found = cycles(&workspace().join("sim/src"));
    let known: Vec<Vec<String>> = KNOWN_SIM_CYCLES
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let new: Vec<&Vec<String>> = found.iter().filter(|c| !known.contains(c)).collect();
    assert!(new.is_empty(), "new import cycles in sim/src: {new:?}");
}

/// The layers of `server/src`, top to bottom (ARCHITECTURE.md "Layers"): a file belongs
/// to the layer of the longest module-path prefix listed; it may import from its own
/// layer and the layers below, never from a layer above.
const SERVER_LAYERS: &[&[&str]] = &[
    &["loopback"],
    &["host"],
    &["web", "web/routes"],
    &["tls", "https"],
    &["net"],
    &["dispatch", "pool"],
    &["web/ops"],
    &["cmd"],
    &["compliance/record"],
    &["core"],
    &[
        "channel",
        "store",
        "files",
        "compliance",
        "web/state",
        "web/tokens",
        "web/api",
        "cmd/error",
        "auth",
    ],
    &["xccos", "sip", "xml"],
    &["config", "clock", "ids", "fault"],
];

fn layer_of(m: &[String]) -> Option<usize> {
    let path = m.join("/");
    let mut best: Option<(usize, usize)> = None;
    for (i, layer) in SERVER_LAYERS.iter().enumerate() {
        for prefix in *layer {
            let hit = path == *prefix || path.starts_with(&format!("{prefix}/"));
            if hit && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), i));
            }
        }
    }
    best.map(|(_, i)| i)
}

#[test]
fn server_src_imports_only_downward() {
    let mods = modules(&workspace().join("server/src"));
    let mut problems = Vec::new();
    for (from, targets) in edges(&mods) {
        if from.is_empty() || is_test(&mods[&from]) {
            continue;
        }
        let Some(lf) = layer_of(&from) else {
            problems.push(format!(
                "{} is in no layer of SERVER_LAYERS",
                from.join("/")
            ));
            continue;
        };
        for to in targets {
            match layer_of(&to) {
                Some(lt) if lt < lf => problems.push(format!(
                    "{} (layer {lf}) imports {} (layer {lt}, above it)",
                    from.join("/"),
                    to.join("/")
                )),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Writes `files` (path, text) under a fresh temp dir and returns its cycles.
fn fixture(files: &[(&str, &str)]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    cycles(dir.path())
}

/// The shape of the old tree's two server cycles: `core` calling back up into
/// `cmd::join` (which imports `core`), and `host` <-> `web` through `use crate::{…}`.
#[test]
fn finds_the_old_trees_cycles() {
    let found = fixture(&[
        (
            "lib.rs",
            "pub mod core; pub mod cmd; pub mod host; pub mod web;",
        ),
        (
            "core/mod.rs",
            "pub struct Core;\nfn drop() { crate::cmd::join::notify_part(); }",
        ),
        ("cmd/mod.rs", "pub mod join;\nuse crate::core::Core;"),
        (
            "cmd/join.rs",
            "use super::Ctx;\npub fn notify_part(_: &crate::core::Core) {}",
        ),
        ("host.rs", "use crate::{config::X, web::serve};"),
        ("web/mod.rs", "use crate::host::{Event, Listener};"),
        ("config.rs", "pub struct X;"),
    ]);
    assert_eq!(
        found,
        vec![
            vec!["cmd/join.rs", "cmd/mod.rs", "core/mod.rs"],
            vec!["host.rs", "web/mod.rs"],
        ]
    );
}

/// What the fix looks like: the lower module calls through a hook it is handed, and
/// comments, `#[cfg(test)]` code and test files do not count.
#[test]
fn hooks_comments_and_tests_are_not_cycles() {
    let found = fixture(&[
        ("core/mod.rs", "pub struct Hooks { pub part: fn() }\n// crate::cmd::join\n#[cfg(test)]\nmod t { use crate::cmd::join; }"),
        ("core/tests.rs", "use crate::cmd::join;"),
        ("cmd/join.rs", "use crate::core::Hooks;"),
        ("dispatch.rs", "use crate::{core::Hooks, cmd::join};"),
        ("a/b/c.rs", "use super::super::d;"),
        ("a/d.rs", "use crate::a::b::c;"),
    ]);
    assert_eq!(found, vec![vec!["a/b/c.rs", "a/d.rs"]]);
}
