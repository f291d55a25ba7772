//! What the lab end-to-end tests share: bringing the namespace lab up and down, running the
//! `osiris` binary, and reading its JSON and the evidence kits it exports.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running lab; `lab down` on drop, so a failed test leaves nothing behind.
pub(crate) struct Lab {
    pub(crate) dir: PathBuf,
    script: PathBuf,
    /// `lab.env`, parsed.
    pub(crate) env: BTreeMap<String, String>,
}

impl Lab {
    /// `lab up` in `dir` with the given settings (`LAB_TARGETS`, `LAB_WIN_TARGETS`, `LAB_DC`, …).
    pub(crate) fn up(dir: &Path, settings: &[(&str, &str)]) -> Lab {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vm-tests/lab/lab");
        let mut command = Command::new(&script);
        command.arg("up").env("LAB_DIR", dir);
        for (key, value) in settings {
            command.env(key, value);
        }
        let out = command.output().unwrap();
        // Constructed before the assertion, so a half-started lab is torn down too.
        let mut lab = Lab {
            dir: dir.to_owned(),
            script,
            env: BTreeMap::new(),
        };
        assert!(
            out.status.success(),
            "lab up failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        lab.env = std::fs::read_to_string(dir.join("lab.env"))
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        lab
    }

    /// Runs the lab script with other arguments (e.g. `ssh N …`).
    pub(crate) fn script(&self, args: &[&str]) -> Output {
        Command::new(&self.script)
            .args(args)
            .env("LAB_DIR", &self.dir)
            .output()
            .unwrap()
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("site.toml")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("down")
            .env("LAB_DIR", &self.dir)
            .output();
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lab tests need root for network namespaces; CI runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| text(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

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
    let out = osiris(dir, &["evidence", "verify", name]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    std::fs::read_to_string(dir.join(name).join("bundles.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The `results` of `osiris scan --json`.
pub(crate) fn scan_results(dir: &Path, config: &Path) -> Vec<serde_json::Value> {
    scan_json(dir, config)["results"]
        .as_array()
        .unwrap()
        .clone()
}
