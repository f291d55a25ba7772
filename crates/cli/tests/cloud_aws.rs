//! `osiris cloud scan` end to end against the AWS peer (`vm-tests/lab/cloud/fakeaws.py`, HTTPS
//! with a throwaway CA, SigV4 checked with botocore's signer): the real binary, a real vault
//! holding the access key, a sealed bundle that verifies in an auditor kit; a vault entry that
//! is not an access key is a configuration error.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use test_support::aws::{FakeAws, SECRET};

fn osiris(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_osiris"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A sandbox with the peer, a vault holding `key_text` as `aws-audit`, and `site.toml`.
fn site(key_text: &str) -> Option<(tempfile::TempDir, FakeAws)> {
    let python = test_support::python::reference_python_with("botocore")?;
    let peer = FakeAws::start(&python, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"smith-family-practice\"\n[credentials]\nvault = \"{dir}/credentials.vault\"\nkey_file = \"{dir}/credentials.key\"\n\n{cloud}timeout_secs = 60\n",
        dir = dir.path().display(),
        cloud = peer.cloud_table("smith-aws", "aws-audit"),
    );
    std::fs::write(dir.path().join("site.toml"), config).unwrap();
    let vault = dir.path().join("credentials.vault");
    let key = dir.path().join("credentials.key");
    for (args, stdin) in [
        (vec!["init-key"], ""),
        (vec!["set", "aws-audit", "--kind", "password"], key_text),
    ] {
        let mut all = vec![
            "credentials",
            "--vault",
            vault.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ];
        all.extend(args);
        assert_exit(&osiris(dir.path(), &all, stdin), 0);
    }
    Some((dir, peer))
}

#[test]
fn the_small_practice_s_account_fails_its_known_checks_and_the_kit_verifies() {
    let Some((dir, _peer)) = site(&FakeAws::vault_text()) else {
        return;
    };
    let out = osiris(
        dir.path(),
        &["-vv", "cloud", "scan", "--config", "site.toml", "--json"],
        "",
    );
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let results = json["results"].as_array().unwrap();
    let with = |status: &str| -> Vec<&str> {
        results
            .iter()
            .filter(|r| r["status"] == status)
            .map(|r| r["check"].as_str().unwrap())
            .collect()
    };
    assert_eq!(
        with("fail"),
        ["AWS-EBS-001", "AWS-IAM-001", "AWS-IAM-002", "AWS-S3-001"]
    );
    assert_eq!(with("error"), Vec::<&str>::new());
    // What a person reads: which bucket is open, which user lacks MFA, the HIPAA control.
    let s3 = results.iter().find(|r| r["check"] == "AWS-S3-001").unwrap();
    assert_eq!(
        s3["observed"]["buckets_not_blocked_names"],
        serde_json::json!(["smithpractice-website", "smithpractice-tmp-share"])
    );
    let mfa = results
        .iter()
        .find(|r| r["check"] == "AWS-IAM-001")
        .unwrap();
    assert_eq!(
        mfa["observed"]["without_mfa_users"],
        serde_json::json!(["office.manager"])
    );
    assert!(mfa["controls"].to_string().contains("164.312(d)"));
    assert!(
        !stderr.contains(SECRET) && !json.to_string().contains(SECRET),
        "the secret access key never reaches the output or the logs"
    );
    assert!(!stderr.contains("Signature="), "no signature was logged");
    let out = osiris(dir.path(), &["evidence", "export", "--out", "kit"], "");
    assert_exit(&out, 0);
    let out = osiris(dir.path(), &["evidence", "show"], "");
    assert_exit(&out, 0);
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("key").map(|k| k.trim().to_owned()))
        .unwrap();
    let out = osiris(
        dir.path(),
        &["evidence", "verify", "kit", "--key", &key],
        "",
    );
    assert_exit(&out, 0);
    let bundles = std::fs::read_to_string(dir.path().join("kit/bundles.jsonl")).unwrap();
    assert!(bundles.contains("\"platform\":\"aws\""));
}

#[test]
fn a_vault_entry_that_is_not_an_access_key_is_a_configuration_error() {
    let Some((dir, peer)) = site(&format!("{SECRET}\n")) else {
        return;
    };
    let out = osiris(dir.path(), &["cloud", "scan", "--config", "site.toml"], "");
    assert_exit(&out, 78);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cloud `smith-aws`: vault entry `aws-audit`: line 1 of the access key entry is not `name = value` (store it again with `osiris credentials set aws-audit --kind password`)"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET), "the secret is never echoed");
    assert!(peer.requests().is_empty(), "nothing was sent");
}
