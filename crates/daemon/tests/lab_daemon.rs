//! Issue 6 acceptance against the namespace lab: `osirisd` scans the lab's SSH targets on its own
//! schedule; a drift L1 may not fix (LIN-SSH-002, auto-heal off) escalates by mail to a real SMTP
//! server (STARTTLS + AUTH) and by a signed webhook; SIGKILL mid-cycle, restart, and the incident
//! is still open, nothing is sent twice, and the evidence kit verifies offline.

#![allow(clippy::unwrap_used, reason = "tests")]

mod daemon_proc;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daemon_proc::{HOOK_SECRET, Hooks, start, wait_for, webhook_receiver};
use test_support::lab::{LAB_TOOLS, Lab};

fn server_scan(status: &api::Status) -> &api::CycleState {
    status
        .cycles
        .iter()
        .find(|c| c.kind == api::CycleKind::ServerScan)
        .unwrap()
}

fn secret_file(path: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_owned()
}

fn ssh002_mails(smtp: &test_support::smtp::Smtp) -> Vec<String> {
    smtp.raw_mails()
        .into_iter()
        .filter(|m| m.contains("LIN-SSH-002") && m.contains("target1"))
        .collect()
}

/// Unmounts a test stick when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn the_daemon_scans_escalates_and_survives_sigkill() {
    if !test_support::require_root("the_daemon_scans_escalates_and_survives_sigkill", LAB_TOOLS) {
        return;
    }
    let Some(python) = test_support::python::reference_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &dir.path().join("lab"),
        &[
            ("LAB_TARGETS", "2"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    let smtp_dir = dir.path().join("smtp");
    std::fs::create_dir(&smtp_dir).unwrap();
    test_support::smtp::pki(&smtp_dir);
    let smtp =
        test_support::smtp::Smtp::start(&python, &smtp_dir, "alerts@lab.example", "smtp-Passw0rd");
    let hooks = Arc::new(Mutex::new(Hooks::default()));
    let hook_url = webhook_receiver(Arc::clone(&hooks));
    let calendar = test_support::calendar::LabCalendar::start().unwrap();
    let smtp_password = secret_file(&dir.path().join("smtp-password"), "smtp-Passw0rd\n");
    let hook_secret = secret_file(&dir.path().join("hook-secret"), HOOK_SECRET);
    let socket = dir.path().join("run/api.sock");
    let config = dir.path().join("appliance.toml");
    // target2 logs in with a key held only in the encrypted vault (what `osiris credentials set
    // lab-ssh --kind ssh-key` stores), not a key file.
    let site = std::fs::read_to_string(lab.config()).unwrap();
    let key_line = site
        .lines()
        .filter(|l| l.starts_with("key_file = "))
        .nth(1)
        .unwrap()
        .to_owned();
    let key_path = key_line
        .trim_start_matches("key_file = ")
        .trim_matches('"')
        .to_owned();
    let (head, tail) = site.split_at(site.rfind(&key_line).unwrap());
    let site = format!("{head}credential = \"lab-ssh\"{}", &tail[key_line.len()..]);
    let data_dir = dir.path().join("lab/osiris-data");
    let vault_key = data_dir.join("keys/credentials.key");
    std::fs::create_dir_all(vault_key.parent().unwrap()).unwrap();
    credentials::Vault::init_key(&vault_key).unwrap();
    let key_text = std::fs::read_to_string(&key_path).unwrap();
    let mut vault = credentials::Vault::open(
        &data_dir.join("credentials.vault"),
        &credentials::KeySource::File(vault_key),
    )
    .unwrap();
    vault
        .set(
            "lab-ssh",
            credentials::CredentialKind::SshKey,
            credentials::Secret::new(key_text.clone()),
        )
        .unwrap();
    let private_part: String = key_text.lines().nth(1).unwrap().to_owned();
    assert!(
        !String::from_utf8_lossy(&std::fs::read(data_dir.join("credentials.vault")).unwrap())
            .contains(&private_part),
        "the vault holds no plaintext"
    );
    std::fs::write(
        &config,
        format!(
            r#"{site}
[evidence]
calendars = ["{calendar}"]
timeout_secs = 5

[daemon]
socket = "{socket}"
export_roots = ["{media}"]
server_scan_secs = 8
drift_rescan_secs = 5
checkpoint_secs = 5
anchor_secs = 10
jitter_percent = 0

[escalation]
first_backoff_secs = 1
max_backoff_secs = 2

[[escalation.channel]]
name = "msp-mail"
kind = "email"
min_severity = "high"
server = "127.0.0.1"
port = {port}
from = "OsirisCare lab <appliance@lab.example>"
to = ["oncall@msp.example"]
username = "alerts@lab.example"
password_file = "{smtp_password}"
ca_file = "{ca}"

[[escalation.channel]]
name = "psa"
kind = "webhook"
min_severity = "high"
url = "{hook_url}"
secret_file = "{hook_secret}"
"#,
            calendar = calendar.base_url(),
            socket = socket.display(),
            media = dir.path().join("media").display(),
            port = smtp.port,
            smtp_password = smtp_password.display(),
            ca = smtp_dir.join("ca.pem").display(),
            hook_secret = hook_secret.display(),
        ),
    )
    .unwrap();
    let log = dir.path().join("osirisd.log");
    let client = api::Client::new(&socket);

    // 1. It scans on its own schedule: two server scans without anyone asking.
    let mut daemon = start(&config, &log);
    let status = wait_for(120, "two scheduled server scans", &log, || {
        client.status().ok().filter(|s| server_scan(s).runs >= 2)
    });
    assert_eq!(status.devices.total, 2, "{:?}", status.devices);
    assert_eq!(status.devices.checked, 2);
    let devices = client.call(&api::endpoint::Targets, &()).unwrap();
    assert!(
        devices.iter().all(|d| d.status != api::DeviceStatus::Error),
        "both targets logged in (target2 with the vault's key): {devices:?}"
    );
    assert!(
        !server_scan(&status).last_failed,
        "{:?}",
        server_scan(&status)
    );
    let hipaa = &status.compliance[0];
    assert_eq!(hipaa.framework, "HIPAA");
    assert!(
        hipaa.permille.is_some() && !hipaa.trend.is_empty(),
        "{hipaa:?}"
    );

    // 2. The drift L1 may not fix is escalated: incident, mail, signed webhook.
    let incident =
        wait_for(30, "the LIN-SSH-002 incident", &log, || {
            client.incidents().ok()?.into_iter().find(|i| {
                i.target == "target1" && i.check == "LIN-SSH-002" && i.phase == "escalated"
            })
        });
    assert!(incident.needs_human);
    assert!(
        incident
            .history
            .iter()
            .any(|h| h.contains("automatic healing is off")),
        "{incident:?}"
    );
    let mails = wait_for(60, "the escalation mail", &log, || {
        Some(ssh002_mails(&smtp)).filter(|m| !m.is_empty())
    });
    assert_eq!(mails.len(), 1, "one mail per open problem");
    assert!(
        mails[0].contains("SSH password authentication disabled"),
        "{}",
        mails[0]
    );
    let hook = wait_for(60, "the signed webhook", &log, || {
        hooks
            .lock()
            .unwrap()
            .verified
            .iter()
            .find(|h| h["check"] == "LIN-SSH-002" && h["target"] == "target1")
            .cloned()
    });
    assert_eq!(hooks.lock().unwrap().rejected, 0);
    assert_eq!(hook["site"], "lab", "{hook}");
    assert_eq!(hook["severity"], "high", "{hook}");
    assert_eq!(hook["reminder"], false, "{hook}");
    // Healing ran too: at least one drift L1 may fix was fixed on its own.
    let healing = client
        .call(&api::endpoint::Healing { limit: 100 }, &())
        .unwrap();
    assert!(healing.iter().any(|h| h.result == "fixed"), "{healing:?}");

    // A SUID program dropped into /usr/share while the daemon runs: a later cycle's incremental
    // walk finds it (checked in the kit below).
    lab.as_root(
        "2",
        "cp /bin/true /usr/share/osiris-planted-live && chmod 4755 /usr/share/osiris-planted-live",
    );

    // 3. SIGKILL in the middle of a cycle.
    wait_for(60, "a server scan in progress", &log, || {
        client.status().ok().filter(|s| server_scan(s).running)
    });
    let killed = Command::new("kill")
        .args(["-KILL", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    daemon.0.wait().unwrap();
    drop(daemon);

    // 4. Restart: the incident is still open under the same id, and nothing is sent twice.
    let daemon = start(&config, &log);
    let before = wait_for(30, "the restarted daemon", &log, || client.status().ok());
    let runs_before = server_scan(&before).runs;
    let again = client
        .incidents()
        .unwrap()
        .into_iter()
        .find(|i| i.target == "target1" && i.check == "LIN-SSH-002")
        .unwrap();
    assert_eq!(again.id, incident.id);
    assert_eq!(again.phase, "escalated");
    wait_for(90, "a server scan after the restart", &log, || {
        client
            .status()
            .ok()
            .filter(|s| server_scan(s).runs > runs_before && !server_scan(s).running)
    });
    assert_eq!(ssh002_mails(&smtp).len(), 1, "the restart must not re-send");

    // 5. The evidence verifies offline and holds the scans, heals and the notification.
    // The "USB stick": its own filesystem, mounted below the export root.
    let usb = dir.path().join("media/usb");
    std::fs::create_dir_all(&usb).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256m", "osiris-test-usb"])
        .arg(&usb)
        .status()
        .unwrap();
    assert!(mounted.success());
    let _unmount = Unmount(usb.clone());
    let kit = client
        .clone()
        .with_timeout(Duration::from_secs(60))
        .call(
            &api::endpoint::Export,
            &api::ExportRequest {
                dest_dir: usb.display().to_string(),
            },
        )
        .unwrap();
    let report = evidence::kit::verify(
        Path::new(&kit.path),
        &evidence::kit::VerifyOptions::default(),
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let bundles: Vec<serde_json::Value> =
        std::fs::read_to_string(Path::new(&kit.path).join("bundles.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let kinds = |kind: &str| bundles.iter().filter(|b| b["kind"] == kind).count();
    assert!(kinds("scan") >= 4, "two targets, at least two scans each");
    assert!(kinds("heal") >= 1);
    assert!(kinds("escalation") >= 1);
    let suid_found = |b: &&serde_json::Value| {
        b["kind"] == "scan"
            && b["body"]["target"]["name"] == "target2"
            && b["body"]["results"].as_array().unwrap().iter().any(|r| {
                r["check"] == "LIN-SUIDBASE-001"
                    && r["observed"]["unexpected"]
                        .as_array()
                        .is_some_and(|u| u.iter().any(|p| p == "/usr/share/osiris-planted-live"))
            })
    };
    assert!(
        bundles.iter().any(|b| suid_found(&b)),
        "the SUID program planted while the daemon ran was found"
    );
    // The hourly checks that pass are carried between the 8-second cycles, never re-run.
    assert!(
        bundles.iter().any(|b| b["kind"] == "scan"
            && b["body"]["carried"]
                .as_array()
                .is_some_and(|c| !c.is_empty())),
        "some scan carried a result that was not due"
    );
    let notification = bundles
        .iter()
        .find(|b| {
            b["kind"] == "notification"
                && b["body"]["check"] == "LIN-SSH-002"
                && b["body"]["target"] == "target1"
        })
        .expect("the notification is evidence");
    let deliveries = notification["body"]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries.iter().all(|d| d["delivered"] == true),
        "{deliveries:?}"
    );
    assert!(
        !std::fs::read_to_string(Path::new(&kit.path).join("bundles.jsonl"))
            .unwrap()
            .contains("smtp-Passw0rd"),
        "secrets never reach evidence"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains("smtp-Passw0rd"), "nor the log");
    assert!(
        !log_text.contains(&private_part),
        "the vault's key never reaches the log"
    );

    let stopped = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
}
