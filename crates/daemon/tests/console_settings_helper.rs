//! The root helper that applies the console's network and time-zone choices (nixos/console-settings.sh), attacked
//! the way a compromised `osirisd` could: links to root-only files, foreign files, and network files that carry more
//! than the wizard writes.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::lab::{is_root, text};

/// The unprivileged user that stands in for `osiris` (it exists on every Debian system).
const OWNER: &str = "nobody";

/// What osirisd writes for a static address (daemon/src/setup.rs `networkd_file`).
const WIZARD_FILE: &str = "# Written by osirisd from the console's network step.\n[Match]\nName=ens3\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\nDNS=10.0.0.10\nDNS=fd00::53\n";

fn helper(args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nixos/console-settings.sh");
    Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("run console-settings.sh")
}

/// A world-traversable directory (the helper reads as `nobody`) with an owned file and a root-only secret.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let secret = dir.path().join("shadow");
        fs::write(&secret, "root:$y$j9T$secret-hash:19000::::::\n").expect("secret");
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
        Scene { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` and gives it to OWNER, as the daemon would have written it.
    fn owned(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, contents).expect("write");
        let status = Command::new("chown")
            .arg(OWNER)
            .arg(&path)
            .status()
            .expect("chown");
        assert!(status.success());
        path
    }

    fn apply_network(&self, src: &Path) -> (Output, PathBuf) {
        let dest = self.path("installed.network");
        let out = helper(&[
            "network",
            src.to_str().expect("utf-8"),
            dest.to_str().expect("utf-8"),
            OWNER,
        ]);
        (out, dest)
    }
}

fn refused(out: &Output, dest: &Path, reason: &str) {
    assert!(
        !out.status.success(),
        "must be refused: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains(reason), "expected {reason:?} in: {stderr}");
    assert!(!dest.exists(), "nothing may be installed when refused");
}

fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("OSIRIS_REQUIRE_ROOT").as_deref() != Ok("1"),
        "OSIRIS_REQUIRE_ROOT=1 but not root: the console-settings helper tests need setpriv as root"
    );
    eprintln!("skipping: the console-settings helper tests need root (setpriv)");
    false
}

#[test]
fn the_wizards_network_file_is_installed_world_readable() {
    if !root_or_skip() {
        return;
    }
    let scene = Scene::new();
    let src = scene.owned("10-osiris.network", WIZARD_FILE);
    let (out, dest) = scene.apply_network(&src);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&dest).expect("installed"), WIZARD_FILE);
    let mode = fs::metadata(&dest).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    let dhcp = scene.owned("dhcp.network", "[Match]\nName=eth0\n[Network]\nDHCP=yes\n");
    let (out, _) = scene.apply_network(&dhcp);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn nothing_to_apply_is_not_an_error() {
    if !root_or_skip() {
        return;
    }
    let scene = Scene::new();
    let (out, dest) = scene.apply_network(&scene.path("missing.network"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dest.exists());
}

#[test]
fn a_link_to_a_root_only_file_is_never_copied_out() {
    if !root_or_skip() {
        return;
    }
    let scene = Scene::new();
    let link = scene.path("10-osiris.network");
    symlink(scene.path("shadow"), &link).expect("symlink");
    let (out, dest) = scene.apply_network(&link);
    refused(&out, &dest, "symbolic link");
    assert!(!text(&out.stderr).contains("secret-hash"));

    // A link to a file the daemon owns is refused too: the helper never follows links.
    let owned = scene.owned("owned.network", WIZARD_FILE);
    let hop = scene.path("hop.network");
    symlink(&owned, &hop).expect("symlink");
    let (out, dest) = scene.apply_network(&hop);
    refused(&out, &dest, "symbolic link");
}

#[test]
fn a_file_the_daemon_does_not_own_is_refused() {
    if !root_or_skip() {
        return;
    }
    let scene = Scene::new();
    let src = scene.path("root-owned.network");
    fs::write(&src, WIZARD_FILE).expect("write");
    let (out, dest) = scene.apply_network(&src);
    refused(&out, &dest, "not owned by the daemon's user");
}

#[test]
fn network_files_beyond_the_wizards_grammar_are_refused() {
    if !root_or_skip() {
        return;
    }
    let cases = [
        // A route through the attacker's host.
        (
            "[Match]\nName=eth0\n[Network]\nDHCP=yes\n[Route]\nGateway=6.6.6.6\n",
            "[Route]",
        ),
        // Match every interface.
        (
            "[Match]\nName=*\n[Network]\nDHCP=yes\n",
            "not an interface name",
        ),
        // A key the wizard never writes.
        (
            "[Match]\nName=eth0\n[Network]\nIPForward=yes\n",
            "IPForward=yes",
        ),
        // A DNS server smuggled with a second value.
        (
            "[Match]\nName=eth0\n[Network]\nDNS=10.0.0.1 6.6.6.6\n",
            "not an IP address",
        ),
        // An address key in the wrong section.
        (
            "[Match]\nName=eth0\nAddress=10.0.0.5/24\n",
            "Address=10.0.0.5/24",
        ),
        // A comment without the space the daemon writes.
        ("#[Network]\n[Match]\nName=eth0\n", "#[Network]"),
    ];
    for (contents, reason) in cases {
        let scene = Scene::new();
        let src = scene.owned("10-osiris.network", contents);
        let (out, dest) = scene.apply_network(&src);
        refused(&out, &dest, reason);
    }

    let scene = Scene::new();
    let big = format!("{WIZARD_FILE}{}", "# padding padding padding\n".repeat(200));
    let src = scene.owned("10-osiris.network", &big);
    let (out, dest) = scene.apply_network(&src);
    refused(&out, &dest, "at most 4096");
}

#[test]
fn time_zones_are_read_as_the_daemon_and_checked() {
    if !root_or_skip() {
        return;
    }
    let scene = Scene::new();
    let good = scene.owned("timezone", "America/New_York\n");
    let out = helper(&["timezone", good.to_str().expect("utf-8"), OWNER]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "America/New_York\n");

    let hostile = scene.owned("timezone-hostile", "../../../etc/shadow\n");
    let out = helper(&["timezone", hostile.to_str().expect("utf-8"), OWNER]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("refusing time zone"));

    let link = scene.path("timezone-link");
    symlink(scene.path("shadow"), &link).expect("symlink");
    let out = helper(&["timezone", link.to_str().expect("utf-8"), OWNER]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).is_empty());
    assert!(!text(&out.stderr).contains("secret-hash"));
}
