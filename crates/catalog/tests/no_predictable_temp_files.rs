//! Issue 14: scripts run as root on targets; a file at a predictable path in a world-writable
//! directory (`/tmp/osiris-x.$$`) lets any local user plant a symlink there and have root
//! write through it. No shipped script may name such a path (the attack itself is performed
//! in `crates/scan/tests/planted_temp_symlinks.rs`).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;

fn scripts(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scripts(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "sh") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn no_script_writes_to_a_predictable_temporary_path() {
    let mut all = Vec::new();
    scripts(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks"),
        &mut all,
    );
    assert!(all.len() > 10, "found only {} scripts", all.len());
    let mut offending = Vec::new();
    for (path, text) in &all {
        for (idx, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or_default();
            let predictable = code.contains("$$")
                || code.contains("${TMPDIR")
                || code.contains("$TMPDIR")
                || code.contains(">/tmp/")
                || code.contains("> /tmp/")
                || code.contains("2>/tmp/")
                || code.contains("\"/tmp/")
                || code.contains("/tmp/osiris");
            if predictable {
                offending.push(format!("{path}:{}: {line}", idx + 1));
            }
        }
    }
    assert!(offending.is_empty(), "{}", offending.join("\n"));
}
