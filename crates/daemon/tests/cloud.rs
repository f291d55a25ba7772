//! `osirisd`'s cloud cycle against the Microsoft Graph peer (`vm-tests/lab/cloud/fakegraph.py`),
//! the AWS peer (`vm-tests/lab/cloud/fakeaws.py`) and the Okta peer (`fakeokta.py`): the real
//! daemon scans the `[[cloud]]` tenant, account and org on its own schedule with the secret from its
//! vault, opens incidents for the tenant's failing checks and escalates them to a person
//! (nothing heals a tenant's setting), joins Intune's state to the machine of the same name,
//! imports the `[[rmm]]` inventories of the RMM peer (`fakermm.py`, Datto and Automate) in its
//! RMM cycle, and the kit exported afterwards
//! (with the real `osiris`, built beside `osirisd`) verifies against the appliance's key.

#![allow(clippy::unwrap_used, reason = "tests")]

mod daemon_proc;

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::graph::{FakeGraph, SECRET};

fn osiris(dir: &Path, args: &[&str]) -> String {
    let osiris = PathBuf::from(env!("CARGO_BIN_EXE_osirisd")).with_file_name("osiris");
    assert!(
        osiris.exists(),
        "{} is missing: build it first (`cargo build -p cli`)",
        osiris.display()
    );
    let out = Command::new(osiris)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "osiris {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_cloud_cycle_scans_the_tenant_opens_its_incidents_and_the_kit_verifies() {
    let Some(python) = test_support::python::reference_python_with("botocore") else {
        return;
    };
    let peer = FakeGraph::start(&python, &[]);
    let aws = test_support::aws::FakeAws::start(&python, &[]);
    let okta = test_support::okta::FakeOkta::start(&python, &[]);
    use test_support::rmm::{FakeRmm, Vendor};
    let datto = FakeRmm::start(&python, Vendor::Datto, &[]);
    let automate = FakeRmm::start(&python, Vendor::Automate, &["--throttle-first"]);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (vault_path, key_path) = (data.join("credentials.vault"), data.join("credentials.key"));
    credentials::Vault::init_key(&key_path).unwrap();
    let key = credentials::KeySource::File(key_path.clone());
    let mut vault = credentials::Vault::open(&vault_path, &key).unwrap();
    vault
        .set(
            "m365-app",
            credentials::CredentialKind::Password,
            credentials::Secret::new(SECRET.to_owned()),
        )
        .unwrap();
    vault
        .set(
            "aws-audit",
            credentials::CredentialKind::Password,
            credentials::Secret::new(test_support::aws::FakeAws::vault_text()),
        )
        .unwrap();
    vault
        .set(
            "okta-token",
            credentials::CredentialKind::Password,
            credentials::Secret::new(test_support::okta::TOKEN.to_owned()),
        )
        .unwrap();
    vault
        .set(
            "rmm-secret",
            credentials::CredentialKind::Password,
            credentials::Secret::new(test_support::rmm::SECRET.to_owned()),
        )
        .unwrap();
    let ssh_key = dir.join("ssh-key");
    std::fs::write(&ssh_key, "not a key: the target never answers\n").unwrap();
    std::fs::set_permissions(
        &ssh_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let config = dir.join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            r#"site = "smith-family-practice"
data_dir = "{data}"

# A laptop that does not answer here (nothing listens on port 1), enrolled in Intune.
[[target]]
name = "sfp-win-12.smith.local"
platform = "linux"
transport = "ssh"
address = "127.0.0.1"
port = 1
user = "osiris"
key_file = "{key_file}"

[credentials]
vault = "{vault}"
key_file = "{key}"

{cloud}
[evidence]
calendars = []

[daemon]
socket = "{socket}"
"#,
            data = data.display(),
            key_file = ssh_key.display(),
            vault = vault_path.display(),
            key = key_path.display(),
            cloud = peer.cloud_table("smith-m365", "m365-app")
                + &aws.cloud_table("smith-aws", "aws-audit")
                + &okta.cloud_table("smith-okta", "okta-token", false)
                + &datto.rmm_table("datto", "rmm-secret")
                + &automate.rmm_table("automate", "rmm-secret"),
            socket = dir.join("run/api.sock").display(),
        ),
    )
    .unwrap();
    let log = dir.join("osirisd.log");
    let daemon = daemon_proc::start(&config, &log);
    let client = api::Client::new(dir.join("run/api.sock"));
    let cycle = daemon_proc::wait_for(60, "the cloud cycle's first run", &log, || {
        let status = client.status().ok()?;
        status
            .cycles
            .into_iter()
            .find(|c| c.kind == api::CycleKind::CloudScan && c.runs >= 1)
    });
    assert!(cycle.enabled && !cycle.last_failed, "{cycle:?}");
    let outcome = cycle.last_outcome.unwrap();
    assert!(
        outcome.starts_with("3 tenants scanned; 17 checks failed, 0 could not be checked"),
        "{outcome}"
    );
    let mut failing: Vec<String> = client
        .incidents()
        .unwrap()
        .into_iter()
        .filter(|i| i.target == "smith-m365" && i.phase == "escalated" && i.needs_human)
        .map(|i| i.check)
        .collect();
    failing.sort();
    assert_eq!(failing, test_support::graph::SMALL_PRACTICE_FAILURES);
    let mut failing_aws: Vec<String> = client
        .incidents()
        .unwrap()
        .into_iter()
        .filter(|i| i.target == "smith-aws" && i.phase == "escalated" && i.needs_human)
        .map(|i| i.check)
        .collect();
    failing_aws.sort();
    assert_eq!(
        failing_aws,
        ["AWS-EBS-001", "AWS-IAM-001", "AWS-IAM-002", "AWS-S3-001"]
    );
    let mut failing_okta: Vec<String> = client
        .incidents()
        .unwrap()
        .into_iter()
        .filter(|i| i.target == "smith-okta" && i.phase == "escalated" && i.needs_human)
        .map(|i| i.check)
        .collect();
    failing_okta.sort();
    assert_eq!(failing_okta, test_support::okta::SMALL_PRACTICE_FAILURES);
    // The laptop that never answered still shows what Intune says: not encrypted.
    let laptop = daemon_proc::wait_for(30, "the laptop's record with Intune's state", &log, || {
        client
            .call(&api::endpoint::Targets, &())
            .ok()?
            .into_iter()
            .find(|d| d.name == "sfp-win-12.smith.local" && d.intune.is_some())
    });
    assert_eq!(laptop.status, api::DeviceStatus::Error);
    assert_eq!(
        laptop.intune,
        Some(api::IntuneState {
            tenant: "smith-m365".to_owned(),
            compliance: "compliant".to_owned(),
            encrypted: false,
            seen_at: laptop.intune.as_ref().unwrap().seen_at,
        })
    );
    // The RMM cycle imports both RMMs; without a directory there is nothing to reconcile yet.
    let rmm = daemon_proc::wait_for(60, "the RMM cycle's first run", &log, || {
        let status = client.status().ok()?;
        status
            .cycles
            .into_iter()
            .find(|c| c.kind == api::CycleKind::RmmImport && c.runs >= 1)
    });
    assert!(rmm.enabled && !rmm.last_failed, "{rmm:?}");
    let outcome = rmm.last_outcome.unwrap();
    assert!(
        outcome.starts_with("datto: 11 devices, not reconciled (no AD inventory yet)")
            && outcome.contains("automate: 10 devices, not reconciled"),
        "{outcome}"
    );
    assert_eq!(automate.answered("/cwa/api/v1/computers", 429), 1);
    // The daemon's Graph traffic: one token, every source read once.
    let requests = peer.requests();
    assert_eq!(requests.iter().filter(|r| r["method"] == "POST").count(), 1);
    drop(daemon);

    let kit = dir.join("kit");
    let data_arg = data.to_str().unwrap();
    osiris(
        dir,
        &[
            "evidence",
            "export",
            "--data-dir",
            data_arg,
            "--out",
            kit.to_str().unwrap(),
        ],
    );
    let show = osiris(dir, &["evidence", "show", "--data-dir", data_arg]);
    let key = show
        .lines()
        .find_map(|line| line.strip_prefix("key").map(|k| k.trim().to_owned()))
        .unwrap();
    let verified = osiris(
        dir,
        &["evidence", "verify", kit.to_str().unwrap(), "--key", &key],
    );
    assert!(verified.contains("verifies"), "{verified}");
    let bundles = std::fs::read_to_string(kit.join("bundles.jsonl")).unwrap();
    assert!(bundles.contains("\"name\":\"smith-m365\",\"platform\":\"microsoft365\""));
    assert!(bundles.contains("\"name\":\"smith-aws\",\"platform\":\"aws\""));
    assert!(bundles.contains("\"name\":\"smith-okta\",\"platform\":\"okta\""));
    let rmm_bundles: Vec<serde_json::Value> = bundles
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|b| b["kind"] == "rmm_inventory")
        .collect();
    assert!(rmm_bundles.len() >= 2, "{}", rmm_bundles.len());
    let sources: std::collections::BTreeSet<&str> = rmm_bundles
        .iter()
        .map(|b| b["body"]["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["automate", "datto"].into());
}
