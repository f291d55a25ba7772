//! Where the browser, ChromeDriver and axe-core are (all installed by `scripts/setup`), and the
//! gate that lets a browser test skip loudly on a developer's machine but fail under CI.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Whether the calling test can run: true when Chromium, ChromeDriver and axe-core are all
/// installed.
///
/// Otherwise it writes a loud `SKIPPED` line straight to stderr and returns false, unless
/// `OSIRIS_REQUIRE_ROOT=1` or `CI` is set (as `scripts/test` does): then it panics, naming the
/// test and what is missing and saying to run `scripts/setup`. The rule is the one
/// `test_support::require_root` applies.
///
/// # Panics
/// When something is missing and the environment requires every test to run.
pub fn require_browser(test: &str) -> bool {
    let missing: Vec<String> = [chromium().err(), chromedriver().err(), axe_js().err()]
        .into_iter()
        .flatten()
        .map(|err| err.to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("{test} needs a browser: {}", missing.join("; "));
    assert!(
        !tests_required(),
        "{message}; OSIRIS_REQUIRE_ROOT=1 (or CI) is set, so this test may not skip"
    );
    // Straight to the stderr file descriptor: the harness captures `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {message} (set OSIRIS_REQUIRE_ROOT=1 to make this a failure) ***\n"
    );
    false
}

/// The Chromium executable: `OSIRIS_CHROMIUM` if set, else Debian's real binary behind its
/// `/usr/bin/chromium` wrapper (the wrapper adds flags of its own), else `chromium` on `PATH`.
pub(crate) fn chromium() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("OSIRIS_CHROMIUM") {
        return existing_program("chromium", PathBuf::from(path));
    }
    let debian = PathBuf::from("/usr/lib/chromium/chromium");
    if is_executable(&debian) {
        return Ok(debian);
    }
    on_path("chromium")
}

/// The ChromeDriver executable: `OSIRIS_CHROMEDRIVER` if set, else `chromedriver` on `PATH`.
pub(crate) fn chromedriver() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("OSIRIS_CHROMEDRIVER") {
        return existing_program("chromedriver", PathBuf::from(path));
    }
    on_path("chromedriver")
}

/// axe-core's `axe.min.js`: `OSIRIS_AXE_JS` if set (as `scripts/test` does), else where
/// `scripts/setup-axe` installs it: the cache directory, then the clone.
pub(crate) fn axe_js() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("OSIRIS_AXE_JS") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::NotInstalled {
            what: "axe-core",
            looked: format!("OSIRIS_AXE_JS={}", path.display()),
        });
    }
    let in_clone = Path::new(env!("CARGO_MANIFEST_DIR")).join("axe");
    let candidates = [PathBuf::from("/var/cache/osiris/axe"), in_clone]
        .map(|dir| dir.join("node_modules/axe-core/axe.min.js"));
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| Error::NotInstalled {
            what: "axe-core",
            looked: candidates
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Whether a missing browser must fail the test (`OSIRIS_REQUIRE_ROOT=1` or `CI`).
fn tests_required() -> bool {
    std::env::var("OSIRIS_REQUIRE_ROOT").as_deref() == Ok("1") || std::env::var_os("CI").is_some()
}

fn existing_program(what: &'static str, path: PathBuf) -> Result<PathBuf> {
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(Error::NotInstalled {
            what,
            looked: path.display().to_string(),
        })
    }
}

fn on_path(name: &'static str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| Error::NotInstalled {
            what: name,
            looked: format!("`{name}` on PATH"),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
