//! `ops` against real peers: the namespace lab's sshd targets, its WinRM peer and its Samba AD DC
//! (vm-tests/lab). One lab for this binary, one store for the whole run, and at the end one kit
//! that must verify with every scan, heal and inventory bundle in it.
//!
//! What a user would check: secrets from 0600 files and from the vault reach the targets and
//! appear in no log line and no bundle; a target nobody answers for and a target with a wrong
//! password are errors, never passes; a dry run changes nothing, a heal fixes and proves it, a
//! paused site holds; discovery seals an inventory under a checkpoint, keeps it for the
//! workstation cycle, and records nothing when the directory refuses or the last inventory is
//! damaged; the workstation plan accounts for every known workstation.

#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use credentials::CredentialKind;
use sha2::Digest as _;
use test_support::lab::{LAB_TOOLS, Lab, text};

use common::{capture_logs, load, logs, note, of_kind, runtime, secret_file, vault};

/// Secrets that must never appear in a log line or a bundle.
const WRONG_SSH_PASSWORD: &str = "Wr0ng-ssh-password-from-the-vault";
const WRONG_WIN_PASSWORD: &str = "Wr0ng-winrm-password-from-a-file";

struct World {
    lab: Lab,
    /// Holds the configurations, credential files, the vault and the kit.
    work: PathBuf,
    data_dir: PathBuf,
    catalog: Arc<catalog::Catalog>,
    rules: rules::RuleSet,
    /// The `[credentials]` section naming the vault.
    credentials: String,
}

#[test]
fn scan_heal_discover_and_plan_against_the_lab() {
    if !test_support::require_root(
        "scan_heal_discover_and_plan_against_the_lab",
        &[LAB_TOOLS, &["samba", "samba-tool"]].concat(),
    ) {
        return;
    }
    // The Windows peer runs on the venv's python.
    if test_support::python::reference_python().is_none() {
        return;
    }
    capture_logs();
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    // The seed lab_ad uses, so both share one cached DC.
    let lab = Lab::up(
        &tmp.path().join("lab"),
        &[
            ("LAB_TARGETS", "2"),
            ("LAB_WIN_TARGETS", "1"),
            ("DC_SEED", "big"),
        ],
    );
    note(&format!(
        "ops lab: lab up took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let credentials = vault(
        &work,
        &[
            (
                "alice-password",
                CredentialKind::Password,
                &read(&lab.env["LAB_SSH_PASSWORD_FILE"]),
            ),
            (
                "alice-key",
                CredentialKind::SshKey,
                &read(&lab.env["LAB_SSH_KEY"]),
            ),
            (
                "win-admin",
                CredentialKind::Password,
                &read(&lab.env["LAB_WIN_PASSWORD_FILE"]),
            ),
            (
                "ad-bind",
                CredentialKind::Password,
                &read(&lab.env["LAB_DC_PASSWORD_FILE"]),
            ),
            ("alice-wrong", CredentialKind::Password, WRONG_SSH_PASSWORD),
        ],
    );
    let catalog = Arc::new(common::catalog());
    let world = World {
        rules: rules::embedded(catalog.runbooks()).unwrap(),
        catalog,
        data_dir: work.join("data"),
        work,
        lab,
        credentials,
    };
    runtime().block_on(async {
        let store = ops::setup::open_store(&world.data_dir, "lab")
            .await
            .unwrap();
        let phase = Instant::now();
        secrets_reach_the_targets_and_never_leak(&world, &store).await;
        note(&format!(
            "ops lab: scans {:.1} s",
            phase.elapsed().as_secs_f64()
        ));
        let phase = Instant::now();
        drift_is_planned_then_fixed_then_held_when_paused(&world, &store).await;
        note(&format!(
            "ops lab: heal {:.1} s",
            phase.elapsed().as_secs_f64()
        ));
        let phase = Instant::now();
        discovery_keeps_the_inventory_and_the_plan_accounts_for_every_workstation(&world, &store)
            .await;
        note(&format!(
            "ops lab: discovery and plan {:.1} s",
            phase.elapsed().as_secs_f64()
        ));

        // Everything above is in one log, and an auditor's kit of it verifies.
        let bundles = common::verified_kit(&store, &world.work.join("kit")).await;
        assert!(!of_kind(&bundles, "scan").is_empty());
        assert!(!of_kind(&bundles, "heal").is_empty());
        assert_eq!(of_kind(&bundles, "inventory").len(), 2);
        let kit_text = std::fs::read_to_string(world.work.join("kit/bundles.jsonl")).unwrap();
        let logged = logs();
        for secret in secrets(&world) {
            assert!(!kit_text.contains(&secret), "a secret is in the evidence");
            assert!(!logged.contains(&secret), "a secret is in the log");
        }
        store.close().await;
    });
    note(&format!(
        "ops lab: total {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

/// One scan of: a target by key file, one by a vault password, one by a vault key, the Windows
/// peer by a vault password with a pinned certificate, a port nobody listens on, and two
/// targets with wrong passwords (vault and file).
async fn secrets_reach_the_targets_and_never_leak(world: &World, store: &store::Store) {
    let env = &world.lab.env;
    let hosts: Vec<&str> = env["LAB_LINUX_HOSTS"].split_whitespace().collect();
    // Password logins go only to servers whose key is pinned (issue 14): pin target 2's key as
    // read on the target itself.
    let host_key = world.lab.host_fingerprint(2);
    let win = env["LAB_WIN_HOSTS"].split_whitespace().next().unwrap();
    let wrong_win = secret_file(
        &world.work.join("wrong-win-password"),
        &format!("{WRONG_WIN_PASSWORD}\n"),
        0o600,
    );
    let ssh = |name: &str, address: &str, port: u16, secret: &str| {
        format!(
            "\n[[target]]\nname = \"{name}\"\nplatform = \"linux\"\ntransport = \"ssh\"\naddress = \"{address}\"\nport = {port}\nuser = \"alice\"\nbecome = \"sudo\"\n{secret}\n"
        )
    };
    let windows = |name: &str, secret: &str| {
        format!(
            "\n[[target]]\nname = \"{name}\"\nplatform = \"windows-server\"\ntransport = \"winrm\"\naddress = \"{win}\"\nuser = \"{}\"\ncert_sha256 = \"{}\"\n{secret}\n",
            env["LAB_WIN_USER"],
            win_cert_sha256(&world.lab)
        )
    };
    let toml = [
        format!("site = \"lab\"\n{}", world.credentials),
        ssh(
            "by-key-file",
            hosts[0],
            22,
            &format!("key_file = {:?}", env["LAB_SSH_KEY"]),
        ),
        ssh(
            "by-vault-password",
            hosts[1],
            22,
            &format!("credential = \"alice-password\"\nhost_key = \"{host_key}\""),
        ),
        ssh("by-vault-key", hosts[1], 22, "credential = \"alice-key\""),
        windows("win-by-vault", "credential = \"win-admin\""),
        ssh(
            "nobody-listens",
            hosts[0],
            2222,
            &format!("key_file = {:?}", env["LAB_SSH_KEY"]),
        ),
        ssh(
            "wrong-vault-password",
            hosts[1],
            22,
            &format!("credential = \"alice-wrong\"\nhost_key = \"{host_key}\""),
        ),
        windows(
            "win-wrong-password",
            &format!("password_file = {:?}", wrong_win.display().to_string()),
        ),
    ]
    .concat();
    let config = load(&world.work, &toml).unwrap();
    let scanned = ops::scan::scan_all(&config, &world.catalog, &world.data_dir)
        .await
        .unwrap();
    let reports: Vec<_> = scanned.iter().map(|s| s.report.clone()).collect();
    let sealed = ops::scan::record_scans(store, &config, &world.catalog, &reports)
        .await
        .unwrap();
    let names: Vec<&str> = sealed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "by-key-file",
            "by-vault-password",
            "by-vault-key",
            "win-by-vault",
            "nobody-listens",
            "wrong-vault-password",
            "win-wrong-password"
        ]
    );
    let by_target: BTreeMap<&str, &scan::TargetReport> = reports
        .iter()
        .map(|r| (r.target.name.as_str(), r))
        .collect();
    for name in [
        "by-key-file",
        "by-vault-password",
        "by-vault-key",
        "win-by-vault",
    ] {
        let report = by_target[name];
        assert!(!report.results.is_empty(), "{name}");
        let errors: Vec<String> = report
            .results
            .iter()
            .filter(|r| r.outcome.status == model::CheckStatus::Error)
            .map(|r| format!("{}: {}", r.runbook_id, r.outcome.reason))
            .collect();
        assert!(errors.is_empty(), "{name} has errors: {errors:#?}");
    }
    // One host reached two ways finds the same.
    let same = |name: &str| -> BTreeMap<String, model::CheckStatus> {
        by_target[name]
            .results
            .iter()
            .map(|r| (r.runbook_id.clone(), r.outcome.status))
            .collect()
    };
    assert_eq!(same("by-vault-password"), same("by-vault-key"));
    for (name, why) in [
        ("nobody-listens", "refused"),
        ("wrong-vault-password", "auth"),
        ("win-wrong-password", "auth"),
    ] {
        let report = by_target[name];
        assert!(!report.results.is_empty(), "{name}");
        for result in &report.results {
            assert_eq!(
                result.outcome.status,
                model::CheckStatus::Error,
                "{name}: {result:?}"
            );
            let reason = result.outcome.reason.to_lowercase();
            assert!(
                reason.starts_with("not checked: ") && reason.contains(why),
                "{name}: {reason}"
            );
        }
    }
    // The failures were logged, by target, with no secret in them.
    let logged = logs();
    for name in [
        "nobody-listens",
        "wrong-vault-password",
        "win-wrong-password",
    ] {
        assert!(logged.contains(name), "{name} not in the log:\n{logged}");
    }
    for secret in secrets(world) {
        assert!(
            !logged.contains(&secret),
            "a secret is in the log:\n{logged}"
        );
    }
}

/// Root login allowed on target1: a dry run plans the fix and changes nothing; a heal fixes it,
/// re-detects, seals the before and after and records the attempt; a paused site holds.
async fn drift_is_planned_then_fixed_then_held_when_paused(world: &World, store: &store::Store) {
    let env = &world.lab.env;
    let target1 = env["LAB_LINUX_HOSTS"].split_whitespace().next().unwrap();
    let site = |healing: &str| {
        format!(
            "site = \"lab\"\n{healing}\n[[target]]\nname = \"target1\"\nplatform = \"linux\"\ntransport = \"ssh\"\naddress = \"{target1}\"\nuser = \"alice\"\nbecome = \"sudo\"\nkey_file = {:?}\n",
            env["LAB_SSH_KEY"]
        )
    };
    let sshd_config = world.lab.dir.join("h1/upper/etc/ssh/sshd_config");
    on_target(
        &world.lab,
        1,
        "sed -i 's/^PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config",
    );
    let drifted = std::fs::read_to_string(&sshd_config).unwrap();
    assert!(drifted.contains("PermitRootLogin yes"));
    let config = load(&world.work, &site("")).unwrap();
    let heal = |dry_run: bool| {
        let config = &config;
        async move {
            let scanned = ops::scan::scan_all(config, &world.catalog, &world.data_dir)
                .await
                .unwrap();
            let options = ops::heal::HealOptions {
                policy: ops::heal::policy(&config.healing),
                in_maintenance: &|_| false,
                dry_run,
                l2: None,
            };
            let healed = ops::heal::heal_scanned(
                store,
                config,
                &world.catalog,
                &world.rules,
                scanned,
                &options,
            )
            .await
            .unwrap();
            healed
                .into_iter()
                .find(|h| h.record.check == "LIN-SSH-001")
                .expect("LIN-SSH-001 fails on target1")
        }
    };

    let size = store.size();
    let planned = heal(true).await;
    assert!(
        matches!(planned.record.result, heal::HealResult::Planned { .. }),
        "{planned:?}"
    );
    assert_eq!(planned.seq, None);
    assert_eq!(store.size(), size, "a dry run recorded evidence");
    assert_eq!(std::fs::read_to_string(&sshd_config).unwrap(), drifted);

    let fixed = heal(false).await;
    assert_eq!(fixed.record.result, heal::HealResult::Fixed, "{fixed:?}");
    let seq = fixed.seq.expect("a fix is sealed");
    // The fix puts its setting first, where sshd's first match takes it.
    let fixed_config = std::fs::read_to_string(&sshd_config).unwrap();
    assert!(
        fixed_config.starts_with("PermitRootLogin no\n"),
        "{fixed_config}"
    );
    let bundle = store.entry(seq).await.unwrap().unwrap();
    assert_eq!(bundle.kind, "heal");
    let bundle: serde_json::Value = serde_json::from_slice(&bundle.line).unwrap();
    let body = &bundle["body"];
    assert_eq!(body["target"]["name"], "target1");
    assert_eq!(body["check"], "LIN-SSH-001");
    assert_eq!(body["result"], "fixed");
    assert_eq!(body["before"]["status"], "fail");
    assert_eq!(body["before"]["observed"]["permit_root_login"], "yes");
    assert_eq!(body["after"]["status"], "pass");
    let attempts = store.heal_attempts_since(0).await.unwrap();
    assert!(
        attempts.iter().any(|a| a.target == "target1"
            && a.check == "LIN-SSH-001"
            && a.verified
            && a.evidence_seq == Some(seq)),
        "{attempts:?}"
    );

    // Paused: found and reported, not fixed, nothing sealed for it.
    on_target(
        &world.lab,
        1,
        "sed -i 's/^PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config",
    );
    let paused = load(&world.work, &site("\n[healing]\npaused = true\n")).unwrap();
    let scanned = ops::scan::scan_all(&paused, &world.catalog, &world.data_dir)
        .await
        .unwrap();
    let options = ops::heal::HealOptions {
        policy: ops::heal::policy(&paused.healing),
        in_maintenance: &|_| false,
        dry_run: false,
        l2: None,
    };
    let healed = ops::heal::heal_scanned(
        store,
        &paused,
        &world.catalog,
        &world.rules,
        scanned,
        &options,
    )
    .await
    .unwrap();
    let held = healed
        .iter()
        .find(|h| h.record.check == "LIN-SSH-001")
        .unwrap();
    assert!(
        matches!(held.record.result, heal::HealResult::Held { .. }),
        "{held:?}"
    );
    assert_eq!(held.seq, None);
    let held_config = std::fs::read_to_string(&sshd_config).unwrap();
    assert!(
        held_config.starts_with("PermitRootLogin yes\n"),
        "{held_config}"
    );
}

/// Discovery with the bind password from the vault; the plan before and after it.
async fn discovery_keeps_the_inventory_and_the_plan_accounts_for_every_workstation(
    world: &World,
    store: &store::Store,
) {
    let env = &world.lab.env;
    let directory = |password: &str| {
        format!(
            "site = \"lab\"\n{}\n[directory]\ndomain = \"{}\"\ndc = \"{}\"\nbind_user = \"{}\"\n{password}\nca_file = {:?}\n\n[workstations]\nuser = \"{}\"\ncredential = \"win-admin\"\nca_file = {:?}\nscope = \"OU=Workstations,{}\"\n",
            world.credentials,
            env["LAB_DC_DOMAIN"],
            env["LAB_DC_HOST"],
            env["LAB_DC_USER"],
            env["LAB_CA"],
            env["LAB_WIN_USER"],
            env["LAB_CA"],
            env["LAB_DC_BASE_DN"],
        )
    };
    let config = load(&world.work, &directory("credential = \"ad-bind\"")).unwrap();

    // Before any discovery there is nothing to plan from, and the operator is told what to run.
    let err = ops::workstations::plan(&config, &world.data_dir)
        .await
        .unwrap_err();
    assert!(err.downcast_ref::<ops::Failed>().is_some(), "{err:#}");
    assert!(format!("{err:#}").contains("osiris discover"), "{err:#}");
    // Without a [workstations] section there is no workstation cycle.
    let servers_only = load(&world.work, "site = \"lab\"\n").unwrap();
    assert!(
        ops::workstations::plan(&servers_only, &world.data_dir)
            .await
            .unwrap()
            .is_none()
    );

    let secrets = ops::secrets::Secrets::new(&config, &world.data_dir);
    let cfg = ops::discover::directory_config(&config, &secrets).unwrap();
    let (body, seq) = ops::discover::discover_and_record(store, &config, &cfg, &world.data_dir)
        .await
        .unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&read(world.lab.dir.join("dc/expected.json"))).unwrap();
    let seeded = expected["computers"].as_array().unwrap();
    let n_workstations = seeded
        .iter()
        .filter(|c| c["class"] == "workstation")
        .count() as u64;
    assert_eq!(body.counts.total, seeded.len() as u64);
    assert_eq!(body.counts.workstations, n_workstations);
    assert!(
        body.changes.is_empty(),
        "first inventory: {:?}",
        body.changes
    );
    // Sealed under a checkpoint that covers it.
    let checkpoint = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(checkpoint.size, seq + 1);
    let entry = store.entry(seq).await.unwrap().unwrap();
    assert_eq!(entry.kind, "inventory");

    // Nothing changed in the directory: nothing changed in the next inventory.
    let (again, _) = ops::discover::discover_and_record(store, &config, &cfg, &world.data_dir)
        .await
        .unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.counts.total, body.counts.total);

    // A refused bind or a damaged last inventory records nothing and keeps what was there.
    let latest = world.data_dir.join("inventory.json");
    let kept = std::fs::read(&latest).unwrap();
    let size = store.size();
    let wrong_bind = secret_file(&world.work.join("wrong-bind"), "not-the-password\n", 0o600);
    let wrong = load(
        &world.work,
        &directory(&format!(
            "password_file = {:?}",
            wrong_bind.display().to_string()
        )),
    )
    .unwrap();
    let wrong_cfg = ops::discover::directory_config(&wrong, &secrets).unwrap();
    let err = ops::discover::discover_and_record(store, &wrong, &wrong_cfg, &world.data_dir)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("data 52e"), "{err:#}");
    assert!(!format!("{err:#}").contains("not-the-password"), "{err:#}");
    assert_eq!(store.size(), size);
    assert_eq!(std::fs::read(&latest).unwrap(), kept);
    std::fs::write(&latest, b"{ half an inventory").unwrap();
    let err = ops::discover::discover_and_record(store, &config, &cfg, &world.data_dir)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("is damaged"), "{err:#}");
    assert_eq!(store.size(), size);
    std::fs::write(&latest, &kept).unwrap();

    // The workstation cycle: one workstation is in the DC's DNS and answers on the peer; every
    // other known workstation is accounted for with a reason.
    let admin = read(world.lab.dir.join("dc/samba/admin-password"));
    let out = Command::new("samba-tool")
        .args([
            "dns",
            "add",
            &env["LAB_DC_HOST"],
            &env["LAB_DC_DOMAIN"],
            "ws001",
            "A",
            env["LAB_WIN_HOSTS"].split_whitespace().next().unwrap(),
        ])
        .arg(format!("-UAdministrator%{}", admin.trim()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "samba-tool dns add: {}",
        text(&out.stderr)
    );
    let plan = ops::workstations::plan(&config, &world.data_dir)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plan.known, n_workstations);
    assert_eq!(plan.targets.len(), 1, "{:?}", plan.not_checked);
    assert_eq!(
        plan.targets.len() as u64 + plan.not_checked.len() as u64,
        plan.known
    );
    let disabled = plan
        .not_checked
        .iter()
        .filter(|n| n.reason == "disabled in Active Directory")
        .count();
    let seeded_disabled = seeded
        .iter()
        .filter(|c| c["class"] == "workstation" && c["disabled"] == true)
        .count();
    assert_eq!(disabled, seeded_disabled);
    assert!(
        plan.not_checked.iter().all(|n| !n.reason.is_empty()),
        "{:?}",
        plan.not_checked
    );
}

/// Every secret the lab run uses, right or wrong.
fn secrets(world: &World) -> Vec<String> {
    let env = &world.lab.env;
    let mut all: Vec<String> = [
        "LAB_SSH_PASSWORD_FILE",
        "LAB_WIN_PASSWORD_FILE",
        "LAB_DC_PASSWORD_FILE",
    ]
    .iter()
    .map(|key| read(&env[*key]).trim().to_owned())
    .collect();
    all.push(WRONG_SSH_PASSWORD.to_owned());
    all.push(WRONG_WIN_PASSWORD.to_owned());
    assert!(all.iter().all(|s| s.len() >= 8), "weak test secrets");
    all
}

/// SHA-256 of the Windows peer's certificate (DER), as an operator pins it.
fn win_cert_sha256(lab: &Lab) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(lab.dir.join("pki/win.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    hex::encode(sha2::Sha256::digest(&out.stdout))
}

/// Runs `command` as root on lab target `n` through the lab's ssh helper.
fn on_target(lab: &Lab, n: usize, command: &str) {
    let quoted = format!("'{}'", command.replace('\'', "'\\''"));
    let out = lab.script(&["ssh", &n.to_string(), "sudo", "-n", "sh", "-c", &quoted]);
    assert!(
        out.status.success(),
        "on target {n}: {command}: {}",
        text(&out.stderr)
    );
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}
