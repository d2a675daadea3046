//! Handlers get a narrow context, not the core (issue 11, point 2; ARCHITECTURE.md
//! "Principles"): no file of the command handlers, the web services' core side, the
//! compliance recorder or the pool names `Core` in its code - they take a
//! `core::BatchCx` (core/cx.rs). Comments and everything from the first `#[cfg(test)]`
//! on are not looked at (tests may drive a whole core).

use std::path::{Path, PathBuf};

/// The files and folders (under `server/src`) that only ever see a `BatchCx`.
const NARROW: &[&str] = &[
    "cmd",
    "web/ops.rs",
    "web/ops",
    "compliance/record.rs",
    "pool.rs",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .expect("read_dir")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The lines of `src` (numbered from 1) that name the type `Core` in code.
fn lines_naming_core(src: &str) -> Vec<(usize, String)> {
    let mut hits = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        let named = code
            .match_indices("Core")
            .any(|(at, _)| is_word(code, at, "Core".len()));
        if named {
            hits.push((i + 1, line.trim().to_string()));
        }
    }
    hits
}

/// Whether `code[at..at + len]` is a whole identifier.
fn is_word(code: &str, at: usize, len: usize) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let before = code[..at].chars().next_back().is_some_and(ident);
    let after = code[at + len..].chars().next().is_some_and(ident);
    !before && !after
}

#[test]
fn handlers_never_name_the_core() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for p in NARROW {
        rust_files(&src.join(p), &mut files);
    }
    assert!(
        files.len() > 15,
        "expected the handler files, found {files:?}"
    );
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read source");
        for (n, line) in lines_naming_core(&text) {
            found.push(format!("{}:{n}: {line}", f.display()));
        }
    }
    assert!(
        found.is_empty(),
        "handlers take a core::BatchCx, not the Core:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_core_in_code_only() {
    let src = "use crate::core::{BatchCx, Core};\n// a Core in a comment\nfn f(cx: &mut BatchCx) {}\nfn g(c: &mut Core) {}\n#[cfg(test)]\nmod t { use crate::core::Core; }\n";
    let hits: Vec<usize> = lines_naming_core(src).into_iter().map(|(n, _)| n).collect();
    assert_eq!(hits, vec![1, 4]);
    assert!(lines_naming_core("struct CoreLike; fn x(_: MyCore) {}").is_empty());
}
