//! A configuration the appliance cannot use is refused before anything connects, as a
//! configuration error (`BadConfig`, exit 78) that names the target and says what to do.
//! Each case is a site file as an operator writes it; the snapshot is the message they read.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::path::Path;
use std::sync::Arc;

use credentials::CredentialKind;
use expect_test::{Expect, expect};

use common::{bad_config, load, runtime, secret_file, vault};

/// Loads `targets` (TOML with `$DIR` for a directory holding a 0600 key `key`, a 0644 key
/// `open-key`, a 0600 password file `pw`, and a vault with an SSH key `ssh-key` and a password
/// `win-pw`), then does what a scan cycle does first: build every transport, read every secret.
#[track_caller]
fn check(targets: &str, expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let res = refuse(dir.path(), targets);
    expect.assert_eq(&bad_config(&res, dir.path()));
}

fn refuse(dir: &Path, targets: &str) -> anyhow::Error {
    secret_file(&dir.join("key"), "not really a key\n", 0o600);
    secret_file(&dir.join("open-key"), "not really a key\n", 0o644);
    secret_file(&dir.join("pw"), "hunter2\n", 0o600);
    let vault_section = vault(
        dir,
        &[
            (
                "ssh-key",
                CredentialKind::SshKey,
                "-----BEGIN OPENSSH PRIVATE KEY-----\n",
            ),
            ("win-pw", CredentialKind::Password, "Lab-Passw0rd!"),
        ],
    );
    // A case with its own `[credentials]` section replaces the working vault's.
    let credentials = if targets.contains("[credentials]") {
        ""
    } else {
        &vault_section
    };
    let text = format!("site = \"clinic\"\ndata_dir = \"$DIR/data\"\n{targets}\n{credentials}")
        .replace("$DIR", &dir.display().to_string());
    let config = match load(dir, &text) {
        Ok(config) => config,
        Err(err) => return err,
    };
    let catalog = Arc::new(common::catalog());
    let scanned = runtime().block_on(ops::scan::scan_all(&config, &catalog, &dir.join("data")));
    match scanned {
        Err(err) => err,
        Ok(scanned) => panic!(
            "scanned {} targets instead of refusing the configuration",
            scanned.len()
        ),
    }
}

#[test]
fn a_key_file_others_can_read() {
    check(
        r#"
[[target]]
name = "fileserver"
platform = "linux"
transport = "ssh"
address = "127.0.0.1"
port = 1
user = "alice"
key_file = "$DIR/open-key"
"#,
        expect![
            "target `fileserver`: credential file $DIR/open-key has mode 644: others can read it; run `chmod 600 $DIR/open-key`"
        ],
    );
}

#[test]
fn a_password_file_that_does_not_exist() {
    check(
        r#"
[[target]]
name = "fileserver"
platform = "linux"
transport = "ssh"
address = "127.0.0.1"
port = 1
user = "alice"
password_file = "$DIR/missing"
"#,
        expect![
            "target `fileserver`: credential file $DIR/missing: No such file or directory (os error 2)"
        ],
    );
}

#[test]
fn two_secrets_for_one_target() {
    check(
        r#"
[[target]]
name = "fileserver"
platform = "linux"
transport = "ssh"
address = "127.0.0.1"
port = 1
user = "alice"
key_file = "$DIR/key"
password_file = "$DIR/pw"
"#,
        expect![
            "$DIR/site.toml: target `fileserver`: give exactly one of `key_file`, `password_file` and `credential`"
        ],
    );
}

#[test]
fn a_credential_that_is_not_in_the_vault() {
    check(
        r#"
[[target]]
name = "fileserver"
platform = "linux"
transport = "ssh"
address = "127.0.0.1"
port = 1
user = "alice"
credential = "nobody-set-this"
"#,
        expect![
            "target `fileserver`: credential `nobody-set-this` is not in the vault $DIR/credentials.vault: add it with `osiris credentials set nobody-set-this --kind password` (the secret is read from stdin)"
        ],
    );
}

#[test]
fn a_winrm_target_given_an_ssh_key_from_the_vault() {
    check(
        r#"
[[target]]
name = "frontdesk"
platform = "windows-server"
transport = "winrm"
address = "127.0.0.1"
port = 1
user = "administrator"
credential = "ssh-key"
"#,
        expect![
            "target `frontdesk`: credential `ssh-key` holds an SSH key, but a password is needed"
        ],
    );
}

#[test]
fn a_vault_whose_key_is_missing() {
    check(
        r#"
[[target]]
name = "frontdesk"
platform = "windows-server"
transport = "winrm"
address = "127.0.0.1"
port = 1
user = "administrator"
credential = "win-pw"

[credentials]
key_file = "$DIR/no-such.key"
"#,
        expect![
            "target `frontdesk`: credential `win-pw`: cannot read key file $DIR/no-such.key: No such file or directory (os error 2)"
        ],
    );
}

#[test]
fn an_unknown_transport() {
    check(
        r#"
[[target]]
name = "printer"
platform = "linux"
transport = "telnet"
address = "127.0.0.1"
"#,
        expect![
            "$DIR/site.toml: target `printer`: transport `telnet` is not available in this version (available: local, ssh, winrm)"
        ],
    );
}

#[test]
fn an_unknown_platform() {
    check(
        r#"
[[target]]
name = "printer"
platform = "amiga"
transport = "ssh"
address = "127.0.0.1"
user = "alice"
key_file = "$DIR/key"
"#,
        expect![
            "$DIR/site.toml: target `printer`: unknown platform `amiga` (known: linux, windows-server, windows-workstation, macos, microsoft365, google-workspace, aws, okta)"
        ],
    );
}

#[test]
fn a_host_name_that_is_a_command_line_option() {
    check(
        r#"
[[target]]
name = "fileserver"
platform = "linux"
transport = "ssh"
address = "-oProxyCommand=touch /tmp/pwned"
user = "alice"
key_file = "$DIR/key"
"#,
        expect![
            "$DIR/site.toml: target `fileserver`: address `-oProxyCommand=touch /tmp/pwned` is not an IP address or host name"
        ],
    );
}

#[test]
fn a_certificate_pin_that_is_not_a_sha256() {
    check(
        r#"
[[target]]
name = "frontdesk"
platform = "windows-server"
transport = "winrm"
address = "127.0.0.1"
user = "administrator"
password_file = "$DIR/pw"
cert_sha256 = "not-hex"
"#,
        expect![
            "$DIR/site.toml: target `frontdesk`: cert_sha256 must be 64 hex digits (colons allowed), the SHA-256 of the certificate"
        ],
    );
}

#[test]
fn an_override_for_a_check_that_does_not_exist() {
    check(
        r#"
[checks.LIN-NOPE-001]
threshold_percent = 90
"#,
        expect!["checks.LIN-NOPE-001: no runbook with this id (see `osiris catalog list`)"],
    );
}

#[test]
fn an_override_outside_the_parameter_range() {
    check(
        r#"
[checks.LIN-DISK-001]
threshold_percent = 5
"#,
        expect!["checks.LIN-DISK-001: parameter `threshold_percent`: 5 is below the minimum 50"],
    );
}

#[test]
fn a_file_that_is_not_toml() {
    check(
        r#"
[[target]
name = "fileserver"
"#,
        expect!["$DIR/site.toml:4:10: unclosed array table, expected `]`"],
    );
}

#[test]
fn discovery_without_a_directory_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(dir.path(), "site = \"clinic\"\n").unwrap();
    let secrets = ops::secrets::Secrets::new(&config, dir.path());
    let err = ops::discover::directory_config(&config, &secrets).unwrap_err();
    expect!["no [directory] section; add domain, dc, bind_user, password_file and ca_file to discover computers from Active Directory"].assert_eq(&bad_config(&err, dir.path()));
}

#[test]
fn a_directory_bind_password_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    secret_file(&dir.path().join("bind"), "secret\n", 0o640);
    secret_file(&dir.path().join("ca.pem"), "", 0o644);
    let text = r#"site = "clinic"

[directory]
domain = "clinic.example"
dc = "127.0.0.1"
bind_user = "svc-osiris@clinic.example"
password_file = "$DIR/bind"
ca_file = "$DIR/ca.pem"
"#
    .replace("$DIR", &dir.path().display().to_string());
    let config = load(dir.path(), &text).unwrap();
    let secrets = ops::secrets::Secrets::new(&config, dir.path());
    let err = ops::discover::directory_config(&config, &secrets).unwrap_err();
    expect![
        "directory: credential file $DIR/bind has mode 640: others can read it; run `chmod 600 $DIR/bind`"
    ]
    .assert_eq(&bad_config(&err, dir.path()));
}
