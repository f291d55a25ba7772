//! The Python venv with the reference OpenTimestamps library, used as an independent parser.

use std::path::PathBuf;

/// The script that reads an `.ots` file with the reference library and prints JSON
/// (usage: `check_ots.py FILE.ots [HEIGHT=HEADER_HEX ...]`).
pub const CHECK_OTS_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ots/tests/python/check_ots.py"
);

/// The venv's interpreter (`$OSIRIS_PYTHON`, default `/var/cache/osiris/venv/bin/python3`).
///
/// Returns `None` with a loud message on stderr when it is missing, unless `CI` or
/// `OSIRIS_REQUIRE_PYTHON=1` is set: then a missing venv fails the calling test.
///
/// # Panics
/// When the venv is missing and required.
#[allow(
    clippy::print_stderr,
    reason = "the skip must be loud in the test output"
)]
pub fn reference_python() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("OSIRIS_PYTHON")
            .unwrap_or_else(|_| "/var/cache/osiris/venv/bin/python3".to_owned()),
    );
    if path.exists() {
        return Some(path);
    }
    let required = std::env::var_os("CI").is_some()
        || std::env::var("OSIRIS_REQUIRE_PYTHON").as_deref() == Ok("1");
    let message = format!(
        "python venv not found at {}: run scripts/setup-python (or set OSIRIS_PYTHON)",
        path.display()
    );
    assert!(!required, "{message}");
    eprintln!("SKIPPED python cross-check: {message}");
    None
}

/// The venv's interpreter when it can import `module` (a cross-check's library: `trestle`,
/// `presidio_analyzer`, …); otherwise the same loud skip, or failure under `CI` or
/// `OSIRIS_REQUIRE_PYTHON=1`, as [`reference_python`].
///
/// # Panics
/// When the venv or the module is missing and required.
#[allow(
    clippy::print_stderr,
    reason = "the skip must be loud in the test output"
)]
pub fn reference_python_with(module: &str) -> Option<PathBuf> {
    let path = reference_python()?;
    let importable = std::process::Command::new(&path)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if importable {
        return Some(path);
    }
    let required = std::env::var_os("CI").is_some()
        || std::env::var("OSIRIS_REQUIRE_PYTHON").as_deref() == Ok("1");
    let message = format!(
        "`{module}` is not importable by {}: run scripts/setup-python (or set OSIRIS_PYTHON)",
        path.display()
    );
    assert!(!required, "{message}");
    eprintln!("SKIPPED python cross-check: {message}");
    None
}
