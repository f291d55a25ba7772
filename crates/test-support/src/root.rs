//! Tests that need root (network namespaces, mounts, other users) and system tools (sshd, Nix,
//! Samba, tmux): one gate that skips loudly on a developer's machine and fails under CI, so a
//! green CI run never hides a test that did not run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the calling test can run: true when this process is root and every program in
/// `tools` is installed.
///
/// Otherwise it writes a loud `SKIPPED` line straight to stderr (the harness does not capture
/// it) and returns false, unless `OSIRIS_REQUIRE_ROOT=1` or `CI` is set: then it panics, naming
/// the test and what is missing. `scripts/test` sets `OSIRIS_REQUIRE_ROOT=1`.
///
/// `tools` are program names looked up on `PATH` and in the sbin directories
/// (`"sshd"`, `"nix-build"`, `"samba"`, …).
///
/// # Panics
/// When something is missing and the environment requires root tests to run.
pub fn require_root(test: &str, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root (run the tests as root, e.g. `sudo -E scripts/test`)".to_owned());
    }
    missing.extend(missing_tools(tools));
    gate(test, &missing)
}

/// Whether every program in `tools` is installed, for a test that needs them but not root
/// (tmux for the console's end-to-end tests): the same skip-or-fail gate as [`require_root`].
///
/// # Panics
/// When a tool is missing and the environment requires these tests to run.
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    gate(test, &missing_tools(tools))
}

/// The same skip-or-fail gate for a test that needs what a setup script provides other than
/// programs (a kernel image, firmware, a venv tool): `missing` names each absent thing and what
/// provides it; empty means go on.
///
/// # Panics
/// When something is missing and tests may not skip (`OSIRIS_REQUIRE_ROOT=1` or `CI`).
pub fn require_setup(test: &str, missing: &[String]) -> bool {
    gate(test, missing)
}

fn missing_tools(tools: &[&str]) -> Vec<String> {
    tools
        .iter()
        .filter(|tool| find_program(tool).is_none())
        .map(|tool| format!("`{tool}` (vm-tests/lab/install-deps or scripts/setup installs it)"))
        .collect()
}

/// `true` when nothing is missing; else a loud skip, or a failure when tests must run.
pub(crate) fn gate(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let message = format!("{test} needs {}", missing.join(" and "));
    assert!(
        !root_tests_required(),
        "{message}; OSIRIS_REQUIRE_ROOT=1 (or CI) is set, so this test may not skip"
    );
    // Straight to the stderr file descriptor: the harness captures `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {message} (set OSIRIS_REQUIRE_ROOT=1 to make this a failure) ***\n"
    );
    false
}

/// Whether this process runs as root (`id -u` is 0).
pub fn is_root() -> bool {
    // No libc dependency for geteuid: `id -u` answers the same question.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Whether a missing root or tool must fail the test (`OSIRIS_REQUIRE_ROOT=1` or `CI`).
pub fn root_tests_required() -> bool {
    std::env::var("OSIRIS_REQUIRE_ROOT").as_deref() == Ok("1") || std::env::var_os("CI").is_some()
}

/// The program's path on `PATH` or in the sbin directories a non-login root shell may lack.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
