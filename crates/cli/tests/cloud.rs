//! `osiris cloud scan` end to end against the Microsoft Graph peer (`vm-tests/lab/cloud/
//! fakegraph.py`), the Google peer (`fakegoogle.py`) and the Okta peer (`fakeokta.py`), HTTPS with a throwaway CA: the real
//! binary, a real vault holding the application's secret or the service account's key, sealed
//! bundles that verify in an auditor kit.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use test_support::graph::{FakeGraph, SECRET};

fn osiris(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A sandbox with the peer, the vault holding `secret` as `m365-app`, and `site.toml`.
struct Site {
    dir: tempfile::TempDir,
    peer: FakeGraph,
}

impl Site {
    fn new(peer_flags: &[&str], secret: &str) -> Option<Site> {
        let python = test_support::python::reference_python()?;
        let peer = FakeGraph::start(&python, peer_flags);
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"site = "smith-family-practice"
[credentials]
vault = "{dir}/credentials.vault"
key_file = "{dir}/credentials.key"

{cloud}timeout_secs = 60
"#,
            dir = dir.path().display(),
            cloud = peer.cloud_table("smith-m365", "m365-app"),
        );
        std::fs::write(dir.path().join("site.toml"), config).unwrap();
        vault_with(dir.path(), "m365-app", &format!("{secret}\n"));
        Some(Site { dir, peer })
    }

    fn osiris(&self, args: &[&str]) -> Output {
        osiris(self.dir.path(), args, None)
    }

    /// `osiris cloud scan --json`, with debug logs on stderr.
    fn scan_json(&self) -> (serde_json::Value, String) {
        let out = self.osiris(&["-vv", "cloud", "scan", "--config", "site.toml", "--json"]);
        assert_exit(&out, 0);
        (
            serde_json::from_slice(&out.stdout).unwrap(),
            text(&out.stderr),
        )
    }

    /// Exports the kit and verifies it against the appliance key, as an auditor would.
    fn kit_verifies(&self) {
        kit_verifies_in(self.dir.path());
    }
}

/// A new vault in `dir` (`credentials.vault`, `credentials.key`) holding `secret` as `name`.
fn vault_with(dir: &Path, name: &str, secret: &str) {
    let vault = dir.join("credentials.vault");
    let key = dir.join("credentials.key");
    let credentials = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec![
            "credentials",
            "--vault",
            vault.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        assert_exit(&osiris(dir, &all, stdin), 0);
    };
    credentials(&["init-key"], None);
    credentials(&["set", name, "--kind", "password"], Some(secret));
}

/// Exports the kit of the site in `dir` and verifies it against the appliance key.
fn kit_verifies_in(dir: &Path) {
    let out = osiris(dir, &["evidence", "export", "--out", "kit"], None);
    assert_exit(&out, 0);
    let out = osiris(dir, &["evidence", "show"], None);
    assert_exit(&out, 0);
    let key = text(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("key").map(|k| k.trim().to_owned()))
        .unwrap();
    let out = osiris(dir, &["evidence", "verify", "kit", "--key", &key], None);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("verifies"),
        "{}",
        text(&out.stdout)
    );
}

fn with_status(json: &serde_json::Value, status: &str) -> Vec<String> {
    json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["check"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_small_practice_fails_its_known_checks_and_the_sealed_bundle_verifies() {
    let Some(site) = Site::new(&[], SECRET) else {
        return;
    };
    let (json, stderr) = site.scan_json();
    assert_eq!(
        with_status(&json, "fail"),
        test_support::graph::SMALL_PRACTICE_FAILURES
    );
    assert_eq!(with_status(&json, "error"), Vec::<String>::new());
    let results = json["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["target"] == "smith-m365"));
    // What a person reads: who lacks MFA, which device is not encrypted, the HIPAA control.
    let mfa = results
        .iter()
        .find(|r| r["check"] == "M365-MFA-001")
        .unwrap();
    assert_eq!(mfa["observed"]["without_mfa"], 2);
    assert_eq!(
        mfa["observed"]["without_mfa_users"],
        serde_json::json!([
            "gina.rossi@smithfamilypractice.onmicrosoft.com",
            "ivy.chen@smithfamilypractice.onmicrosoft.com"
        ])
    );
    assert!(mfa["controls"].to_string().contains("164.312(d)"));
    let encryption = results
        .iter()
        .find(|r| r["check"] == "M365-DEV-002")
        .unwrap();
    assert_eq!(
        encryption["observed"]["unencrypted_devices"],
        serde_json::json!(["SFP-WIN-12 (Windows)"])
    );
    assert_eq!(json["evidence"]["bundles"][0]["target"], "smith-m365");
    // The secret never reaches the output or the logs, nor the token the peer issued.
    assert!(!stderr.contains(SECRET) && !json.to_string().contains(SECRET));
    assert!(!stderr.contains("eyJ"), "a bearer token was logged");
    site.kit_verifies();
    // The kit holds the tenant's scan as any target's.
    let bundles = std::fs::read_to_string(site.dir.path().join("kit/bundles.jsonl")).unwrap();
    assert!(bundles.contains("\"platform\":\"microsoft365\""));
    assert!(bundles.contains("\"device_type\":\"tenant\""));
}

#[test]
fn a_revoked_secret_is_reported_on_every_check_and_still_sealed() {
    let Some(site) = Site::new(&[], "revoked~secret-value") else {
        return;
    };
    let out = site.osiris(&["cloud", "scan", "--config", "site.toml"]);
    assert_exit(&out, 0);
    let report = text(&out.stdout);
    assert!(report.contains("AADSTS7000215"), "{report}");
    assert!(
        report.contains("create a new one in Entra ID and store it with `osiris credentials set`"),
        "{report}"
    );
    assert!(
        report.contains("15 could not be checked — 0 fail, 15 error, 0 pass"),
        "{report}"
    );
    assert!(report.contains("bundle #0 (smith-m365)"), "{report}");
    site.kit_verifies();
    // Graph itself was never asked.
    assert!(site.peer.requests().iter().all(|r| r["method"] == "POST"));
}

#[test]
fn a_missing_permission_is_named_in_the_check_that_needs_it() {
    let roles = "User.Read.All,AuditLog.Read.All,Policy.Read.All,RoleManagement.Read.Directory,SecurityAlert.Read.All,SecurityEvents.Read.All";
    let Some(site) = Site::new(&["--roles", roles], SECRET) else {
        return;
    };
    let (json, _) = site.scan_json();
    assert_eq!(
        with_status(&json, "error"),
        ["M365-DEV-001", "M365-DEV-002"]
    );
    let device = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "M365-DEV-002")
        .unwrap();
    assert!(
        device["reason"]
            .as_str()
            .unwrap()
            .contains("needs application permission DeviceManagementManagedDevices.Read.All"),
        "{device}"
    );
}

#[test]
fn an_unknown_tenant_a_missing_vault_entry_and_a_secret_in_config_are_configuration_errors() {
    let Some(site) = Site::new(&[], SECRET) else {
        return;
    };
    let out = site.osiris(&[
        "cloud",
        "scan",
        "--config",
        "site.toml",
        "--tenant",
        "other",
    ]);
    assert_exit(&out, 78);
    assert!(
        text(&out.stderr).contains(
            "no `[[cloud]]` tenant named `other` in the configuration (configured: smith-m365)"
        ),
        "{}",
        text(&out.stderr)
    );

    let config = std::fs::read_to_string(site.dir.path().join("site.toml")).unwrap();
    std::fs::write(
        site.dir.path().join("other.toml"),
        config.replace("credential = \"m365-app\"", "credential = \"m365-missing\""),
    )
    .unwrap();
    let out = site.osiris(&["cloud", "scan", "--config", "other.toml"]);
    assert_exit(&out, 78);
    assert!(
        text(&out.stderr)
            .contains("cloud `smith-m365`: credential `m365-missing` is not in the vault"),
        "{}",
        text(&out.stderr)
    );

    let out = site.osiris(&["config", "validate", "site.toml"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stdout).contains("1 cloud tenants"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(
        site.dir.path().join("secret.toml"),
        config.replace(
            "timeout_secs = 60",
            "timeout_secs = 60\nclient_secret = \"hunter2\"",
        ),
    )
    .unwrap();
    let out = site.osiris(&["config", "validate", "secret.toml"]);
    assert_exit(&out, 78);
    assert!(
        text(&out.stderr).contains("`client_secret` does not belong in the configuration"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hostile_and_huge_tenants_end_in_errors_or_whole_results_and_the_kit_verifies() {
    // A tenant that throttles every call: every check an error, within the tenant's timeout.
    let Some(site) = Site::new(&["--throttle-all"], SECRET) else {
        return;
    };
    let config = std::fs::read_to_string(site.dir.path().join("site.toml")).unwrap();
    std::fs::write(
        site.dir.path().join("site.toml"),
        config.replace("timeout_secs = 60", "timeout_secs = 10"),
    )
    .unwrap();
    let (json, _) = site.scan_json();
    assert_eq!(with_status(&json, "error").len(), 15);
    assert!(json.to_string().contains("kept throttling"), "{json}");
    site.kit_verifies();

    // A page link to another host: refused, never requested; the checks on users are errors.
    let Some(site) = Site::new(
        &[
            "--profile",
            "large",
            "--users",
            "1500",
            "--foreign-link",
            "users",
        ],
        SECRET,
    ) else {
        return;
    };
    let (json, _) = site.scan_json();
    assert_eq!(
        with_status(&json, "error"),
        ["M365-GUEST-002", "M365-INACTIVE-001", "M365-MFA-001"]
    );
    assert!(
        json.to_string()
            .contains("refused to follow @odata.nextLink")
    );
    assert_eq!(
        site.peer.answered("/v1.0/users", 200),
        1,
        "the foreign page was never requested"
    );

    // Malformed JSON from the alerts endpoint: that check is an error, the others stand.
    let Some(site) = Site::new(&["--malformed", "security/alerts_v2"], SECRET) else {
        return;
    };
    let (json, _) = site.scan_json();
    assert_eq!(with_status(&json, "error"), ["M365-ALERT-001"]);
    assert_eq!(with_status(&json, "fail").len(), 8);

    // A 10,000-user tenant is read whole and judged.
    let Some(site) = Site::new(
        &[
            "--profile",
            "large",
            "--users",
            "10000",
            "--devices",
            "3000",
        ],
        SECRET,
    ) else {
        return;
    };
    let (json, _) = site.scan_json();
    assert_eq!(with_status(&json, "pass").len(), 15, "{json}");
    let mfa = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "M365-MFA-001")
        .unwrap();
    assert_eq!(mfa["observed"]["enabled_members"], 10_000);
    site.kit_verifies();
}

#[test]
fn a_google_workspace_account_and_a_microsoft_365_tenant_are_scanned_in_one_run() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let graph = FakeGraph::start(&python, &[]);
    let google = test_support::google::FakeGoogle::start(&python, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"smith-family-practice\"\n[credentials]\nvault = \"{dir}/credentials.vault\"\nkey_file = \"{dir}/credentials.key\"\n\n{m365}\n{google}",
        dir = dir.path().display(),
        m365 = graph.cloud_table("smith-m365", "m365-app"),
        google = google.cloud_table("smith-google", "google-sa"),
    );
    std::fs::write(dir.path().join("site.toml"), config).unwrap();
    vault_with(dir.path(), "google-sa", &google.key_json());
    let key = dir.path().join("credentials.key");
    let out = osiris(
        dir.path(),
        &[
            "credentials",
            "--vault",
            dir.path().join("credentials.vault").to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
            "set",
            "m365-app",
            "--kind",
            "password",
        ],
        Some(SECRET),
    );
    assert_exit(&out, 0);
    let out = osiris(
        dir.path(),
        &["-vv", "cloud", "scan", "--config", "site.toml", "--json"],
        None,
    );
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failing = |target: &str| -> Vec<String> {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["target"] == target && r["status"] == "fail")
            .map(|r| r["check"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        failing("smith-google"),
        test_support::google::SMALL_PRACTICE_FAILURES
    );
    assert_eq!(
        failing("smith-m365"),
        test_support::graph::SMALL_PRACTICE_FAILURES
    );
    assert_eq!(with_status(&json, "error"), Vec::<String>::new());
    let enforcement = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "GWS-2SV-001")
        .unwrap();
    assert_eq!(
        enforcement["observed"]["not_enforced_users"],
        serde_json::json!([
            "gina.rossi@smithfamilypractice.com",
            "hal.berg@smithfamilypractice.com",
            "ivy.chen@smithfamilypractice.com"
        ])
    );
    assert!(enforcement["controls"].to_string().contains("164.312(d)"));
    // Neither the key nor a token reaches the output or the logs.
    let stderr = text(&out.stderr);
    for leak in ["PRIVATE KEY", "ya29.", "private_key"] {
        assert!(
            !stderr.contains(leak) && !json.to_string().contains(leak),
            "{leak} leaked"
        );
    }
    kit_verifies_in(dir.path());
    let bundles = std::fs::read_to_string(dir.path().join("kit/bundles.jsonl")).unwrap();
    assert!(bundles.contains("\"name\":\"smith-google\",\"platform\":\"google-workspace\""));
}

#[test]
fn an_okta_org_is_scanned_with_a_service_app_key_and_its_names_stay_data() {
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let okta = test_support::okta::FakeOkta::start(&python, &["--hostile"]);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"smith-family-practice\"\n[credentials]\nvault = \"{dir}/credentials.vault\"\nkey_file = \"{dir}/credentials.key\"\n\n{okta}",
        dir = dir.path().display(),
        okta = okta.cloud_table("smith-okta", "okta-app", true),
    );
    std::fs::write(dir.path().join("site.toml"), config).unwrap();
    vault_with(dir.path(), "okta-app", &okta.app_key_pem());
    let out = osiris(
        dir.path(),
        &["-vv", "cloud", "scan", "--config", "site.toml", "--json"],
        None,
    );
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        with_status(&json, "fail"),
        test_support::okta::SMALL_PRACTICE_FAILURES
    );
    assert_eq!(with_status(&json, "error"), Vec::<String>::new());
    let result = |check: &str| {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["check"] == check)
            .unwrap()
            .clone()
    };
    // The tenant's names arrive as the strings they are, markup and escapes included.
    let mfa = result("OKTA-MFA-001");
    assert_eq!(
        mfa["observed"]["not_enrolled_users"][2],
        "mal<script>alert(\"x\")</script>\u{1b}[31m@smithfamilypractice.com"
    );
    assert!(mfa["controls"].to_string().contains("164.312(d)"));
    let signon = result("OKTA-SIGNON-001");
    assert!(
        signon["observed"]["rules_without_mfa"][0]
            .as_str()
            .unwrap()
            .starts_with("Default Policy / Front desk <img")
    );
    // Never a raw escape on the console, in JSON or in the plain report.
    assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07));
    let plain = osiris(
        dir.path(),
        &["cloud", "scan", "--config", "site.toml"],
        None,
    );
    assert_exit(&plain, 0);
    assert!(!plain.stdout.contains(&0x1b) && !plain.stdout.contains(&0x07));
    assert!(text(&plain.stdout).contains("Scan of smith-okta (okta)"));
    // The key never reaches the output or the logs, nor an access token.
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("PRIVATE KEY") && !json.to_string().contains("PRIVATE KEY"));
    assert!(!stderr.contains(&okta.app_key_pem()[40..80]));
    kit_verifies_in(dir.path());
    let bundles = std::fs::read_to_string(dir.path().join("kit/bundles.jsonl")).unwrap();
    assert!(bundles.contains("\"name\":\"smith-okta\",\"platform\":\"okta\""));
}
