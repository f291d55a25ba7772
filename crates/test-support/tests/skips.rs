//! Every test that can skip goes through one gate that CI turns into a failure
//! (`test_support::require_root`, `OSIRIS_REQUIRE_ROOT=1`; the Python peers through
//! `reference_python`, `OSIRIS_REQUIRE_PYTHON=1`; the browser through
//! `browser_test::require_browser`, failing under `OSIRIS_REQUIRE_ROOT=1` too): no test file
//! checks for root or prints its own skip notice, so a green CI run never hides a test that did
//! not run.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};

/// Files allowed to ask whether they run as root, and why.
const ALLOWED: &[(&str, &str)] = &[(
    "crates/scan/tests/unprivileged.rs",
    "drops privileges when it has them, runs unprivileged otherwise; never skips",
)];

/// Files allowed to mention a skip notice, and why.
const SKIP_TEXT_ALLOWED: &[(&str, &str)] = &[(
    "crates/browser-test/tests/harness.rs",
    "checks the wording of browser_test::require_browser's own notice; skips nothing itself",
)];

#[test]
fn no_test_decides_on_its_own_to_skip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root.join("crates")).unwrap() {
        let tests = dir.unwrap().path().join("tests");
        if tests.is_dir() {
            rust_files(&tests, &mut files);
        }
    }
    rust_files(&root.join("tui/tests"), &mut files);
    assert!(files.len() > 30, "only {} test files found", files.len());
    let mut offences = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        if rel == "crates/test-support/tests/skips.rs" {
            continue;
        }
        let allowed = ALLOWED.iter().any(|(path, _)| *path == rel);
        let text = std::fs::read_to_string(file).unwrap();
        for (line_idx, line) in text.lines().enumerate() {
            let own_skip =
                line.contains("SKIPPED") && !SKIP_TEXT_ALLOWED.iter().any(|(path, _)| *path == rel);
            let root_check =
                line.contains("is_root") || line.contains("geteuid") || line.contains(r#""-u""#);
            if own_skip || (root_check && !allowed) {
                offences.push(format!("{rel}:{}: {}", line_idx + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "gate these through test_support::require_root (or reference_python) instead:\n{}",
        offences.join("\n")
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}
