//! Issue 14, finding 9: `osiris credentials set` typed on a terminal must not echo the secret
//! (anyone behind the operator, a screen share or the scroll-back would read it), and must give
//! the terminal its echo back afterwards. Driven on a real pseudo-terminal.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Command;

const SECRET: &str = "Hunter2-not-for-screens";

fn osiris_credentials(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_osiris"));
    cmd.arg("credentials")
        .arg("--vault")
        .arg(dir.join("credentials.vault"))
        .arg("--key-file")
        .arg(dir.join("credentials.key"))
        .current_dir(dir)
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `osiris credentials set clinic-admin` on a real pseudo-terminal through `pty_run.py`,
/// typing `typed` at the prompt (`<SIGINT>`: pressing Ctrl-C instead); returns its report.
fn set_on_a_terminal(python: &Path, dir: &Path, typed: &str) -> serde_json::Value {
    assert!(
        osiris_credentials(dir)
            .arg("init-key")
            .status()
            .unwrap()
            .success()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/pty_run.py");
    let out = Command::new(python)
        .arg(script)
        .arg(typed)
        .arg("from stdin")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_osiris"))
        .arg("credentials")
        .arg("--vault")
        .arg(dir.join("credentials.vault"))
        .arg("--key-file")
        .arg(dir.join("credentials.key"))
        .args(["set", "clinic-admin", "--kind", "password"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_secret_typed_on_a_terminal_is_not_echoed_and_echo_comes_back() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let report = set_on_a_terminal(&python, dir, SECRET);
    let screen = report["screen"].as_str().unwrap();
    assert_eq!(report["code"], 0, "{screen}");
    assert!(screen.contains("from stdin"), "no prompt: {screen}");
    assert!(screen.contains("stored `clinic-admin`"), "{screen}");
    assert!(!screen.contains(SECRET), "the secret was echoed: {screen}");
    assert_eq!(report["echo_on_after"], true, "echo stays off: {screen}");

    // The secret arrived intact.
    let vault = credentials::Vault::open(
        &dir.join("credentials.vault"),
        &credentials::KeySource::File(dir.join("credentials.key")),
    )
    .unwrap();
    let stored = vault.get("clinic-admin").unwrap().unwrap();
    assert_eq!(stored.secret.expose(), SECRET);
}

/// Ctrl-C at the prompt: the terminal gets its echo back (before, it stayed off and the next
/// command typed was invisible), the command says so and exits 130, and nothing is stored.
#[test]
fn ctrl_c_at_the_secret_prompt_gives_the_terminal_its_echo_back() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let report = set_on_a_terminal(&python, dir, "<SIGINT>");
    let screen = report["screen"].as_str().unwrap();
    assert!(screen.contains("from stdin"), "no prompt: {screen}");
    assert_eq!(report["code"], 130, "{screen}");
    assert!(
        screen.contains("interrupted: nothing was stored"),
        "{screen}"
    );
    assert_eq!(report["echo_on_after"], true, "echo stays off: {screen}");
    assert!(
        !dir.join("credentials.vault").exists()
            || credentials::Vault::open(
                &dir.join("credentials.vault"),
                &credentials::KeySource::File(dir.join("credentials.key")),
            )
            .unwrap()
            .get("clinic-admin")
            .unwrap()
            .is_none(),
        "something was stored"
    );
}
