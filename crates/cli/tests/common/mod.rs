//! What the lab end-to-end tests share: bringing the namespace lab up and down, running the
//! `osiris` binary, and reading its JSON and the evidence kits it exports.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::path::Path;
use std::process::{Command, Output};

pub(crate) use test_support::lab::{LAB_TOOLS, Lab, text};

/// Runs the `osiris` binary in `dir`.
pub(crate) fn osiris(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// `osiris scan --json` of a configuration; asserts success.
pub(crate) fn scan_json(dir: &Path, config: &Path) -> serde_json::Value {
    let out = osiris(
        dir,
        &["scan", "--json", "--config", config.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The result of `check` on `target` in a scan's `results`.
pub(crate) fn result<'a>(
    results: &'a [serde_json::Value],
    target: &str,
    check: &str,
) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["target"] == target && r["check"] == check)
        .unwrap_or_else(|| panic!("no {check} on {target}"))
}

/// Exports the data directory's evidence as kit `name` under `dir`, asserts that `osiris evidence
/// verify` accepts it, and returns its bundles.
pub(crate) fn verified_kit(dir: &Path, data_dir: &Path, name: &str) -> Vec<serde_json::Value> {
    let out = osiris(
        dir,
        &[
            "evidence",
            "export",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--out",
            name,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The auditor pins the key the appliance itself reports, never the kit's own.
    let key = appliance_key(dir, data_dir);
    let out = osiris(dir, &["evidence", "verify", name, "--key", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    std::fs::read_to_string(dir.join(name).join("bundles.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The appliance's verifier key as `osiris evidence show` prints it on the appliance.
pub(crate) fn appliance_key(dir: &Path, data_dir: &Path) -> String {
    let out = osiris(
        dir,
        &["evidence", "show", "--data-dir", data_dir.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("key"))
        .map(|key| key.trim().to_owned())
        .expect("`osiris evidence show` prints the key")
}

/// The `results` of `osiris scan --json`.
pub(crate) fn scan_results(dir: &Path, config: &Path) -> Vec<serde_json::Value> {
    scan_json(dir, config)["results"]
        .as_array()
        .unwrap()
        .clone()
}

/// Runs `command` as root on lab host `host` ([`Lab::as_root`]).
pub(crate) fn on_lab_host(lab: &Lab, host: &str, command: &str) {
    lab.as_root(host, command);
}

/// The checks that do not pass (fail or error) on `target` in a scan's `results`, sorted.
pub(crate) fn not_passing(
    results: &[serde_json::Value],
    target: &str,
) -> std::collections::BTreeSet<String> {
    results
        .iter()
        .filter(|r| r["target"] == target && (r["status"] == "fail" || r["status"] == "error"))
        .map(|r| r["check"].as_str().unwrap().to_owned())
        .collect()
}
