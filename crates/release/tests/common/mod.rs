//! What the release tool's tests share: running `osiris-release` and other programs, and a
//! throwaway Secure Boot signing key with its certificate.

#![allow(clippy::unwrap_used, reason = "test helpers")]
#![allow(dead_code, reason = "each test file uses its own part")]

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An EFI binary that is always there once setup ran (systemd-boot-efi).
pub(crate) const EFI_BINARY: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

pub(crate) fn tool<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osiris-release"))
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command`, which must succeed; its stdout.
pub(crate) fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A Secure Boot signing key (0600) and its certificate (what a vendor's `db` holds).
pub(crate) fn db_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.crt"));
    run(Command::new("openssl")
        .args([
            "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg(format!("/CN={name}/"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (key, cert)
}
