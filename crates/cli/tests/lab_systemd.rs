//! Linux targets that run systemd, end to end (issue 3's systemd runbooks): bring up the lab with
//! one systemd-nspawn target beside one hostoverlay target, stop time sync, switch unattended
//! upgrades off, make the journal volatile and fail a service on the systemd target, find exactly
//! that drift, heal it with L1, verify by re-scanning, check the evidence kit holds before/after
//! bundles for each fix, and check `lab down` leaves nothing running.
//! Needs root (namespaces, nspawn); without root it says so loudly and does nothing.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{
    LAB_TOOLS, Lab, not_passing, on_lab_host, osiris, result, scan_results, text, verified_kit,
};

/// Drift on sys1, as an administrator might cause it: time sync stopped and disabled, unattended
/// upgrades switched off (config and timer), journald made volatile in journald.conf, and cron
/// failed by a broken drop-in that is then removed (the unit stays failed).
const DRIFT: &str = r#"set -e
systemctl disable --now systemd-timesyncd.service
printf 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "0";\n' > /etc/apt/apt.conf.d/20auto-upgrades
systemctl disable --now apt-daily-upgrade.timer
sed -i 's/^#\?Storage=.*/Storage=volatile/' /etc/systemd/journald.conf
systemctl restart systemd-journald
mkdir -p /run/systemd/system/cron.service.d
printf '[Service]\nExecStartPre=/bin/false\n' > /run/systemd/system/cron.service.d/drift.conf
systemctl daemon-reload
systemctl restart cron.service || true
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  [ "$(systemctl is-failed cron.service)" = failed ] && break
  sleep 0.25
done
rm -rf /run/systemd/system/cron.service.d
systemctl daemon-reload
[ "$(systemctl is-failed cron.service)" = failed ]"#;

/// The four systemd runbooks, each healed by its own L1 rule.
const SYSTEMD_CHECKS: [&str; 4] = [
    "LIN-AUDIT-001",
    "LIN-NTP-001",
    "LIN-PATCH-001",
    "LIN-SVC-001",
];

#[test]
fn drift_on_a_systemd_target_is_found_healed_verified_and_proven() {
    if !test_support::require_root(
        "drift_on_a_systemd_target_is_found_healed_verified_and_proven",
        &[LAB_TOOLS, &["systemd-nspawn", "debootstrap"]].concat(),
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &work.path().join("lab"),
        &[
            ("LAB_TARGETS", "1"),
            ("LAB_SYSTEMD_TARGETS", "1"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    assert_eq!(lab.env["LAB_SYSTEMD_HOSTS"], "10.77.0.31");
    let config = lab.config();

    // Pristine: the four systemd checks pass on sys1 (real systemd, journald, timesyncd, apt timers).
    let before = scan_results(work.path(), &config);
    for check in SYSTEMD_CHECKS {
        let pristine = result(&before, "sys1", check);
        assert_eq!(pristine["status"], "pass", "{pristine}");
    }
    assert_eq!(
        result(&before, "sys1", "LIN-NTP-001")["observed"]["service"],
        "systemd-timesyncd"
    );
    let baseline = not_passing(&before, "sys1");
    let baseline_target1 = not_passing(&before, "target1");

    on_lab_host(&lab, "s1", DRIFT);

    // Exactly the drift fails: the four checks, plus LIN-JOURNAL-001 for the volatile journal.
    let drifted = scan_results(work.path(), &config);
    assert!(
        drifted.iter().all(|r| r["status"] != "error"),
        "{drifted:#?}"
    );
    let new_failures: BTreeSet<String> = not_passing(&drifted, "sys1")
        .difference(&baseline)
        .cloned()
        .collect();
    let expected: BTreeSet<String> = SYSTEMD_CHECKS
        .iter()
        .chain(&["LIN-JOURNAL-001"])
        .map(|c| (*c).to_owned())
        .collect();
    assert_eq!(new_failures, expected);
    assert_eq!(not_passing(&drifted, "target1"), baseline_target1);
    let ntp = &result(&drifted, "sys1", "LIN-NTP-001")["observed"];
    assert_eq!(ntp["state"], "inactive", "{ntp}");
    assert_eq!(ntp["service_active"], false, "{ntp}");
    let patch = &result(&drifted, "sys1", "LIN-PATCH-001")["observed"];
    assert_eq!(patch["configured"], false, "{patch}");
    assert_eq!(
        patch["stopped_timers"],
        serde_json::json!(["apt-daily-upgrade.timer"])
    );
    let audit = &result(&drifted, "sys1", "LIN-AUDIT-001")["observed"];
    assert_eq!(audit["journal_storage"], "volatile", "{audit}");
    let services = &result(&drifted, "sys1", "LIN-SVC-001")["observed"];
    assert_eq!(
        services["failed_units"],
        serde_json::json!(["cron.service"])
    );
    assert_eq!(services["n_not_allowlisted"], 0);

    // Heal: every drift on sys1 is fixed and verified by L1.
    let out = osiris(work.path(), &["heal", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let fixed: BTreeSet<String> = report
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words.len() >= 3 && words[0] == "FIXED" && words[1] == "sys1")
                .then(|| words[2].to_owned())
        })
        .collect();
    assert!(fixed.is_superset(&expected), "{report}");
    // The firewall fix loads on a minimal system too (no /etc/protocols: ICMP by number).
    assert!(fixed.contains("LIN-FW-001"), "{report}");
    // Kernel settings a container may not change are said plainly, and rolled back.
    assert!(
        report.lines().any(|l| l.contains("LIN-KERN-001")
            && l.contains("the kernel refused to change")
            && l.contains("rolled back")),
        "{report}"
    );
    // Without systemd the same findings go to a person instead of being edited.
    for check in ["LIN-NTP-001", "LIN-AUDIT-001"] {
        assert!(
            report.lines().any(|l| l.split_whitespace().take(3).eq([
                "ESCALATED",
                "target1",
                check
            ])),
            "{check} on target1 was not escalated:\n{report}"
        );
    }

    // Re-scan: the drift is gone, for real (service running, timer on, journal on disk).
    let after = scan_results(work.path(), &config);
    for check in &expected {
        let healed = result(&after, "sys1", check);
        assert_eq!(healed["status"], "pass", "{healed}");
    }
    assert_eq!(
        result(&after, "sys1", "LIN-NTP-001")["observed"]["service_active"],
        true
    );
    // The fixes landed in sys1's own filesystem only.
    let dropin = "etc/systemd/journald.conf.d/60-osiris-audit.conf";
    let upper = std::fs::read_to_string(lab.dir.join("s1/upper").join(dropin)).unwrap();
    assert!(upper.contains("Storage=persistent"), "{upper}");
    assert!(
        !std::path::Path::new("/").join(dropin).exists(),
        "the host's own journald configuration was edited"
    );

    // The evidence holds before/after for each of the four fixes and verifies.
    let bundles = verified_kit(work.path(), &lab.dir.join("osiris-data"), "kit");
    for check in SYSTEMD_CHECKS {
        let heal: Vec<&serde_json::Value> = bundles
            .iter()
            .filter(|b| {
                b["kind"] == "heal"
                    && b["body"]["target"]["name"] == "sys1"
                    && b["body"]["check"] == check
            })
            .collect();
        assert_eq!(heal.len(), 1, "{check}: {heal:#?}");
        let body = &heal[0]["body"];
        assert_eq!(body["result"], "fixed", "{check}: {body}");
        assert_eq!(body["before"]["status"], "fail", "{check}: {body}");
        assert_eq!(body["after"]["status"], "pass", "{check}: {body}");
        assert_eq!(body["rule"], format!("L1-{check}"), "{check}: {body}");
    }

    // `lab down` stops the container and leaves no namespace or nspawn behind.
    let lab_dir = lab.dir.clone();
    drop(lab);
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !text(&namespaces.stdout).contains("tlab-s1"),
        "{}",
        text(&namespaces.stdout)
    );
    let nspawn = Command::new("pgrep")
        .args([
            "-f",
            &format!("systemd-nspawn.* -D {}/s1/merged", lab_dir.display()),
        ])
        .output()
        .unwrap();
    assert!(
        text(&nspawn.stdout).trim().is_empty(),
        "systemd-nspawn still running: {}",
        text(&nspawn.stdout)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&*lab_dir.to_string_lossy()), "{mounts}");
}
