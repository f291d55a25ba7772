//! Repository hygiene: every Rust module opens with a `//!` line saying what it owns.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};

#[test]
fn every_module_starts_with_a_module_doc() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for file in rust_files(crates) {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_default();
        if !first.starts_with("//!") {
            missing.push(file.strip_prefix(crates).unwrap().display().to_string());
        }
        checked += 1;
    }
    assert!(
        checked > 30,
        "only {checked} files found under {}",
        crates.display()
    );
    assert!(
        missing.is_empty(),
        "modules without a `//!` doc line:\n{}",
        missing.join("\n")
    );
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && name != "data" && !name.starts_with('.') {
                out.extend(rust_files(&path));
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    out
}
