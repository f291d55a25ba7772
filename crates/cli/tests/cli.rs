//! End-to-end tests of the `osiris` binary: each runs the real executable in its own sandbox
//! directory and checks stdout, stderr and the exit code, as a user would.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn osiris(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_osiris"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    /// The appliance key as `osiris evidence show` prints it on the appliance: what an auditor
    /// obtains independently of a kit.
    fn appliance_key(&self) -> String {
        let out = self.osiris(&["evidence", "show"]);
        assert_exit(&out, 0);
        stdout(&out)
            .lines()
            .find_map(|line| line.strip_prefix("key"))
            .map(|key| key.trim().to_owned())
            .expect("`osiris evidence show` prints the key")
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

#[test]
fn scan_with_no_arguments_reports_stores_evidence_and_the_kit_verifies() {
    let sandbox = Sandbox::new();
    let out = sandbox.osiris(&["scan"]);
    assert_exit(&out, 0);
    let report = stdout(&out);
    assert!(
        report.starts_with(&format!(
            "Scan of localhost (linux): {} checks",
            n_linux_checks()
        )),
        "{report}"
    );
    assert!(report.contains("HIPAA Security Rule\n"), "{report}");
    assert!(
        report.contains("bundle #0 (localhost) signed by osiris-appliance/"),
        "{report}"
    );
    assert!(sandbox.path("osiris-data/osiris.db").exists());
    let key_mode = std::fs::metadata(sandbox.path("osiris-data/keys/appliance.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
        0o600
    );

    // A second scan appends to the same log.
    let out = sandbox.osiris(&["scan", "--json"]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), n_linux_checks());
    for result in results {
        assert_eq!(result["target"], "localhost");
        // Every shipped check runs on this machine (scan/tests/local_scan.rs); none errors.
        assert!(
            ["pass", "fail", "skipped"].contains(&result["status"].as_str().unwrap()),
            "{result}"
        );
        assert!(result["check"].as_str().unwrap().starts_with("LIN-"));
        assert!(!result["controls"].as_array().unwrap().is_empty());
        assert!(result.get("observed").is_some());
    }
    assert_eq!(json["evidence"]["bundles"][0]["seq"], 1);
    assert_eq!(json["evidence"]["log_size"], 2);

    let out = sandbox.osiris(&["evidence", "export", "--out", "kit"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("2 bundles"), "{}", stdout(&out));
    let key = sandbox.appliance_key();
    // The export, run on the appliance, prints the key to record and the pinned command.
    assert!(
        stdout(&out).contains(&format!("--key '{key}'")),
        "{}",
        stdout(&out)
    );
    let out = sandbox.osiris(&["evidence", "verify", "kit", "--key", &key]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("kit kit verifies"),
        "{}",
        stdout(&out)
    );
    // What `--json` printed is what the sealed bundle #1 says, check by check: the checks that
    // ran in its results, those not due yet (carried from bundle #0) in its `carried` list.
    let bundles: Vec<serde_json::Value> =
        std::fs::read_to_string(sandbox.path("kit/bundles.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    let body = &bundles.iter().find(|b| b["seq"] == 1).unwrap()["body"];
    let statuses = |results: &serde_json::Value| -> std::collections::BTreeMap<String, String> {
        results
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["check"].to_string(), r["status"].to_string()))
            .collect()
    };
    let mut sealed = statuses(&body["results"]);
    let carried = statuses(&body["carried"]);
    assert_eq!(
        body["summary"]["total"].as_u64(),
        Some(sealed.len() as u64),
        "the summary counts what ran"
    );
    sealed.extend(carried.clone());
    assert_eq!(sealed.len(), n_linux_checks());
    assert_eq!(sealed, statuses(&json["results"]));
    let marked: std::collections::BTreeSet<String> = results
        .iter()
        .filter(|r| r["carried"] == true)
        .map(|r| r["check"].to_string())
        .collect();
    assert_eq!(marked, carried.into_keys().collect());

    // The key file in the kit is the one the appliance reports; a key file works as --key too.
    let kit_key = std::fs::read_to_string(sandbox.path("kit/appliance.pub")).unwrap();
    assert_eq!(kit_key.trim(), key);
    sandbox.write("appliance.key", &key);
    assert_exit(
        &sandbox.osiris(&["evidence", "verify", "kit", "--key", "appliance.key"]),
        0,
    );
    // Pinning another appliance's key fails.
    let other = Sandbox::new();
    assert_exit(&other.osiris(&["scan"]), 0);
    let other_key = other.appliance_key();
    let out = sandbox.osiris(&["evidence", "verify", "kit", "--key", &other_key]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("appliance.pub"), "{}", stdout(&out));
}

/// Issue 14 finding 3: a forger makes a consistent kit with a key of their own. Without a pinned
/// key it must not pass as verified; pinned to the real appliance key it fails.
#[test]
fn a_kit_forged_with_its_own_key_is_unpinned_without_key_and_refused_with_it() {
    let real = Sandbox::new();
    assert_exit(&real.osiris(&["scan"]), 0);
    let real_key = real.appliance_key();

    // The forger runs their own appliance data (same site name, invented results) and exports.
    let forger = Sandbox::new();
    assert_exit(&forger.osiris(&["scan"]), 0);
    assert_exit(&forger.osiris(&["evidence", "export", "--out", "kit"]), 0);
    let forged = forger.path("kit");
    let forged = forged.to_str().unwrap();

    // The auditor without a key: everything is consistent, but the answer is UNPINNED, exit 3.
    let out = real.osiris(&["evidence", "verify", forged]);
    assert_exit(&out, 3);
    assert!(stdout(&out).contains("UNPINNED"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(" verifies"), "{}", stdout(&out));
    assert!(stderr(&out).contains("--key"), "{}", stderr(&out));
    // With the real appliance's key: refused, naming the key file.
    let out = real.osiris(&["evidence", "verify", forged, "--key", &real_key]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("appliance.pub"), "{}", stdout(&out));
    // Accepting the kit's key knowingly passes, and says that it is not pinned.
    let out = real.osiris(&["evidence", "verify", forged, "--trust-kit-key"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("NOT pinned"), "{}", stdout(&out));
    // --key and --trust-kit-key together are a usage error.
    let out = real.osiris(&[
        "evidence",
        "verify",
        forged,
        "--key",
        &real_key,
        "--trust-kit-key",
    ]);
    assert_exit(&out, 2);
    // A kit with a problem exits 1 even without a key (problems come first).
    std::fs::write(forger.path("kit/extra.txt"), "smuggled\n").unwrap();
    assert_exit(&real.osiris(&["evidence", "verify", forged]), 1);
}

#[test]
fn flipping_any_byte_of_a_real_kit_fails_verification_with_a_located_message() {
    let sandbox = Sandbox::new();
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    assert_exit(&sandbox.osiris(&["evidence", "export", "--out", "kit"]), 0);
    let kit = sandbox.path("kit");
    let opts = evidence::kit::VerifyOptions {
        pinned_key: None,
        block_headers: Default::default(),
        witness: None,
    };
    assert!(evidence::kit::verify(&kit, &opts).problems.is_empty());

    let mut flips = 0;
    for file in files(&kit) {
        let rel = file
            .strip_prefix(&kit)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "README.md" {
            continue;
        }
        let original = std::fs::read(&file).unwrap();
        for idx in 0..original.len() {
            let mut bytes = original.clone();
            bytes[idx] ^= 0x01;
            std::fs::write(&file, &bytes).unwrap();
            let report = evidence::kit::verify(&kit, &opts);
            assert!(
                !report.problems.is_empty(),
                "flipping byte {idx} of {rel} went unnoticed"
            );
            flips += 1;
        }
        std::fs::write(&file, &original).unwrap();
    }
    assert!(flips > 1000, "only {flips} bytes flipped");

    // Through the binary: a flipped bundle byte names the file and line, exit code 1.
    let bundles = kit.join("bundles.jsonl");
    let original = std::fs::read(&bundles).unwrap();
    let second_line = original.iter().position(|b| *b == b'\n').unwrap() + 1;
    let mut bytes = original.clone();
    let target = second_line
        + original[second_line..]
            .windows(6)
            .position(|w| w == b"\"pass\"")
            .unwrap()
        + 2;
    bytes[target] = b'P';
    std::fs::write(&bundles, &bytes).unwrap();
    let out = sandbox.osiris(&["evidence", "verify", "kit"]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("kit/bundles.jsonl:2:"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("does NOT verify"), "{}", stderr(&out));
}

#[test]
fn readme_is_the_only_unprotected_file() {
    let sandbox = Sandbox::new();
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    assert_exit(&sandbox.osiris(&["evidence", "export", "--out", "kit"]), 0);
    let readme = sandbox.path("kit/README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(text.contains("osiris evidence verify"), "{text}");
    // The unsigned README must not be where an auditor gets the key to compare.
    let key = sandbox.appliance_key();
    // `<name>+<keyid>+<base64>`; base64 itself may hold a `+`.
    let key_b64 = key.splitn(3, '+').nth(2).unwrap();
    assert!(key_b64.len() >= 44, "{key}");
    assert!(!text.contains(key_b64), "{text}");
    std::fs::write(&readme, "edited by someone\n").unwrap();
    assert_exit(
        &sandbox.osiris(&["evidence", "verify", "kit", "--key", &key]),
        0,
    );
    std::fs::write(sandbox.path("kit/extra.txt"), "smuggled\n").unwrap();
    let out = sandbox.osiris(&["evidence", "verify", "kit", "--key", &key]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("extra.txt"), "{}", stdout(&out));
}

#[test]
fn export_refuses_to_overwrite_and_needs_evidence() {
    let sandbox = Sandbox::new();
    let out = sandbox.osiris(&["evidence", "export", "--out", "kit"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no evidence in osiris-data: run `osiris scan` first"),
        "{}",
        stderr(&out)
    );
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    sandbox.write("kit/keep.txt", "mine");
    let out = sandbox.osiris(&["evidence", "export", "--out", "kit"]);
    assert_exit(&out, 1);
    assert_eq!(
        std::fs::read_to_string(sandbox.path("kit/keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn bad_configuration_exits_78_before_doing_anything() {
    let sandbox = Sandbox::new();
    let config = sandbox.write("site.toml", "site = \"clinic\"\ndata_dir = \"data\"\n[[target]]\nname = \"a\"\nplatform = \"linux\"\ntransport = \"local\"\nhostname = \"a\"\n");
    let out = sandbox.osiris(&["scan", "--config", config.to_str().unwrap()]);
    assert_exit(&out, 78);
    assert!(
        stderr(&out).contains("site.toml:7:1: unknown field `hostname`"),
        "{}",
        stderr(&out)
    );
    assert!(
        !sandbox.path("data").exists(),
        "a bad config must not create the data dir"
    );

    let out = sandbox.osiris(&["config", "validate", config.to_str().unwrap()]);
    assert_exit(&out, 78);

    let config = sandbox.write(
        "ok.toml",
        "site = \"clinic\"\n[checks.LIN-DISK-001]\nthreshold_percent = 95\n",
    );
    let out = sandbox.osiris(&["config", "validate", config.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("valid (1 targets, 0 cloud tenants, 0 RMMs, site `clinic`)"),
        "{}",
        stdout(&out)
    );

    let config = sandbox.write("bad-param.toml", "site = \"clinic\"\n[checks.LIN-DISK-001]\nthreshold_percent = 5\n[checks.LIN-NOPE-001]\nx = 1\n");
    let out = sandbox.osiris(&["config", "validate", config.to_str().unwrap()]);
    assert_exit(&out, 78);
    let err = stderr(&out);
    assert!(
        err.contains(
            "checks.LIN-DISK-001: parameter `threshold_percent`: 5 is below the minimum 50"
        ),
        "{err}"
    );
    assert!(
        err.contains("checks.LIN-NOPE-001: no runbook with this id"),
        "{err}"
    );

    let out = sandbox.osiris(&["config", "validate", "missing.toml"]);
    assert_exit(&out, 78);
    assert!(
        stderr(&out).contains("cannot read configuration missing.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unwritable_data_dir_is_a_clear_error() {
    let sandbox = Sandbox::new();
    sandbox.write("blocker", "a file where a directory should be");
    let out = sandbox.osiris(&["scan", "--data-dir", "blocker/data"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("blocker/data"), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
    // Each cause of the chain is printed once: the store's message, then the OS reason.
    let reason = std::io::Error::from_raw_os_error(20).to_string();
    assert!(
        err.contains(&format!(
            "data directory blocker/data is not writable (choose another with --data-dir or fix its permissions): {reason}"
        )),
        "{err}"
    );
    assert_eq!(err.matches(&reason).count(), 1, "{err}");
}

#[test]
fn catalog_check_reports_file_and_line() {
    let sandbox = Sandbox::new();
    let out = sandbox.osiris(&["catalog", "check"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with(&format!(
            "catalogue valid: {} runbooks",
            catalog::embedded().unwrap().runbooks().len()
        )),
        "{}",
        stdout(&out)
    );

    sandbox.write(
        "cat/linux/X-BAD-001.toml",
        "id = \"X-BAD-001\"\ntitle = \"t\"\n[oops\n",
    );
    let out = sandbox.osiris(&["catalog", "check", "cat"]);
    assert_exit(&out, 78);
    assert!(
        stderr(&out).contains("cat/linux/X-BAD-001.toml:3:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_of_missing_or_truncated_kit_fails_precisely() {
    let sandbox = Sandbox::new();
    let out = sandbox.osiris(&["evidence", "verify", "nowhere"]);
    assert_exit(&out, 1);
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    assert_exit(&sandbox.osiris(&["evidence", "export", "--out", "kit"]), 0);
    let bundles = sandbox.path("kit/bundles.jsonl");
    let bytes = std::fs::read(&bundles).unwrap();
    std::fs::write(&bundles, &bytes[..bytes.len() - 10]).unwrap();
    let out = sandbox.osiris(&["evidence", "verify", "kit"]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("kit/bundles.jsonl"),
        "{}",
        stdout(&out)
    );
    std::fs::remove_file(&bundles).unwrap();
    let out = sandbox.osiris(&["evidence", "verify", "kit"]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("bundles.jsonl"), "{}", stdout(&out));
}

fn n_linux_checks() -> usize {
    catalog::embedded()
        .unwrap()
        .for_platform(model::Platform::Linux)
        .count()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A kit whose checkpoints Central Command's witness cosigned: `--witness-key` checks the
/// cosignatures and, since the witness only cosigns the claimed appliance's log, pins the key;
/// another witness's key fails; without it the cosignatures are only mentioned.
#[test]
fn a_witnessed_kit_verifies_with_the_witness_key_and_fails_with_another() {
    let sandbox = Sandbox::new();
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    let witness =
        evidence::WitnessKey::from_seed("central.acme-it.example/witness", &[5; 32]).unwrap();
    // What the appliance's link does with Central Command's answer: keep the cosignature.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store::Store::open(&store::StoreConfig {
            data_dir: sandbox.path("osiris-data"),
            site: "default".into(),
        })
        .await
        .unwrap();
        let checkpoint = store.create_checkpoint().await.unwrap();
        let body = &checkpoint.note[..=checkpoint.note.rfind("\n\n").unwrap()];
        let line = witness.cosign(body, 1_764_000_000);
        store.put_cosignature(checkpoint.size, &line).await.unwrap();
        // A line that is not a cosignature is refused before it is stored.
        assert!(
            store
                .put_cosignature(checkpoint.size, "hello")
                .await
                .is_err()
        );
        store.close().await;
    });
    assert_exit(&sandbox.osiris(&["scan"]), 0);
    assert_exit(&sandbox.osiris(&["evidence", "export", "--out", "kit"]), 0);

    let key = witness.verifier().to_string();
    let out = sandbox.osiris(&["evidence", "verify", "kit", "--witness-key", &key]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("vouched for by the witness's cosignatures"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out)
            .contains("witness      central.acme-it.example/witness: 1 checkpoint cosigned"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("not witnessed yet"),
        "{}",
        stdout(&out)
    );

    let other = evidence::WitnessKey::from_seed("central.acme-it.example/witness", &[6; 32])
        .unwrap()
        .verifier()
        .to_string();
    let out = sandbox.osiris(&["evidence", "verify", "kit", "--witness-key", &other]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("no checkpoint carries a valid cosignature"),
        "{}",
        stdout(&out)
    );

    let out = sandbox.osiris(&["evidence", "verify", "kit"]);
    assert_exit(&out, 3);
    assert!(
        stdout(&out).contains("carry cosignatures; pass --witness-key"),
        "{}",
        stdout(&out)
    );
    let out = sandbox.osiris(&["evidence", "verify", "kit", "--witness-key", "garbage"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("not a witness key"),
        "{}",
        stderr(&out)
    );
}
