//! Linux targets over SSH, end to end (issue 3's acceptance): bring up the namespace lab (real
//! sshd hosts), introduce drift on one target, find it, heal it with L1, verify by re-scanning,
//! check the evidence holds before/after, and refuse a changed host key.
//! Needs root (namespaces); without root it says so loudly and does nothing.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use common::{LAB_TOOLS, Lab, osiris, result, scan_results, text, verified_kit};

/// Runs a command as root on lab target `n` (1-based).
fn on_target(lab: &Lab, n: usize, command: &str) {
    lab.as_root(&n.to_string(), command);
}

fn status<'a>(
    results: &'a [serde_json::Value],
    target: &str,
    check: &str,
) -> &'a serde_json::Value {
    result(results, target, check)
}

#[test]
fn drift_on_lab_targets_is_found_healed_verified_and_proven() {
    if !test_support::require_root(
        "drift_on_lab_targets_is_found_healed_verified_and_proven",
        LAB_TOOLS,
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // Windows peers and the DC have their own end-to-end tests (lab_windows.rs, lab_ad.rs).
    let lab = Lab::up(
        &work.path().join("lab"),
        &[
            ("LAB_TARGETS", "3"),
            ("LAB_WIN_TARGETS", "0"),
            ("LAB_DC", "0"),
        ],
    );
    let config = lab.dir.join("site.toml");
    let hosts: Vec<&str> = lab.env["LAB_LINUX_HOSTS"].split_whitespace().collect();
    assert_eq!(hosts.len(), 3);
    let out = osiris(
        work.path(),
        &["config", "validate", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Drift on target1 only: root login allowed, a world-writable file in /etc, firewall flushed.
    on_target(
        &lab,
        1,
        "sed -i 's/^PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config && touch /etc/osiris-drift && chmod 666 /etc/osiris-drift && nft flush ruleset",
    );
    let results = scan_results(work.path(), &config);
    let n_checks = catalog::embedded()
        .unwrap()
        .for_platform(model::Platform::Linux)
        .count();
    assert_eq!(results.len(), 3 * n_checks);
    assert!(
        results.iter().all(|r| r["status"] != "error"),
        "{results:#?}"
    );
    let root_login = status(&results, "target1", "LIN-SSH-001");
    assert_eq!(root_login["status"], "fail", "{root_login}");
    assert_eq!(root_login["observed"]["permit_root_login"], "yes");
    let world_writable = status(&results, "target1", "LIN-PERM-003");
    assert_eq!(
        world_writable["observed"]["world_writable"][0],
        "/etc/osiris-drift"
    );
    assert_eq!(status(&results, "target1", "LIN-FW-001")["status"], "fail");
    assert_eq!(status(&results, "target2", "LIN-SSH-001")["status"], "pass");
    assert_eq!(
        status(&results, "target2", "LIN-PERM-003")["status"],
        "pass"
    );

    // A dry run changes nothing.
    let out = osiris(
        work.path(),
        &["heal", "--dry-run", "--config", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("WOULD FIX  target1      LIN-SSH-001"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        status(
            &scan_results(work.path(), &config),
            "target1",
            "LIN-SSH-001"
        )["status"],
        "fail"
    );

    // Heal: every drift on target1 is fixed and verified; the password-login change waits for a person.
    let out = osiris(work.path(), &["heal", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for check in ["LIN-SSH-001", "LIN-PERM-003", "LIN-FW-001"] {
        assert!(
            report.contains(&format!("FIXED      target1      {check}")),
            "{check} not fixed:\n{report}"
        );
    }
    assert!(
        report.contains("ESCALATED  target1      LIN-SSH-002     automatic healing is off"),
        "{report}"
    );
    assert!(!report.contains("NOT FIXED"), "{report}");

    // Re-scan: the drift is gone; the fix landed in target1's own filesystem only.
    let results = scan_results(work.path(), &config);
    for check in [
        "LIN-SSH-001",
        "LIN-PERM-003",
        "LIN-FW-001",
        "LIN-KERN-001",
        "LIN-ACCT-002",
    ] {
        assert_eq!(
            status(&results, "target1", check)["status"],
            "pass",
            "{check}"
        );
    }
    let upper_sshd = std::fs::read_to_string(lab.dir.join("h1/upper/etc/ssh/sshd_config")).unwrap();
    assert!(
        upper_sshd.starts_with("PermitRootLogin no\n"),
        "{upper_sshd}"
    );
    let host_sshd = std::fs::read_to_string("/etc/ssh/sshd_config").unwrap_or_default();
    assert!(
        !host_sshd.contains("# osiris:"),
        "the host's own sshd_config was edited"
    );

    // The evidence holds before/after for each fix and verifies.
    let bundles = verified_kit(work.path(), &lab.dir.join("osiris-data"), "kit");
    let heal: Vec<&serde_json::Value> = bundles
        .iter()
        .filter(|b| {
            b["kind"] == "heal"
                && b["body"]["target"]["name"] == "target1"
                && b["body"]["check"] == "LIN-SSH-001"
        })
        .collect();
    assert_eq!(heal.len(), 1, "{heal:#?}");
    assert_eq!(heal[0]["body"]["result"], "fixed");
    assert_eq!(
        heal[0]["body"]["before"]["observed"]["permit_root_login"],
        "yes"
    );
    assert_eq!(heal[0]["body"]["after"]["status"], "pass");
    assert_eq!(heal[0]["body"]["rule"], "L1-LIN-SSH-001");
    assert!(bundles.iter().any(|b| b["kind"] == "escalation"));

    // target2 gets a new host key: its checks become errors naming it; the others still scan.
    on_target(
        &lab,
        2,
        "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && kill -HUP $(cat /run/sshd.pid 2>/dev/null || pgrep -o sshd)",
    );
    // sshd re-executes on SIGHUP: wait until it serves the new key.
    let new_key =
        std::fs::read_to_string(lab.dir.join("h2/upper/etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    let new_key = new_key.split_whitespace().nth(1).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let scan = std::process::Command::new("ssh-keyscan")
            .args(["-T", "2", "-t", "ed25519", hosts[1]])
            .output()
            .unwrap();
        let served = text(&scan.stdout);
        if served.contains(new_key) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "target2 still serves {served:?} 20 s after SIGHUP, not {new_key}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let results = scan_results(work.path(), &config);
    for result in results.iter().filter(|r| r["target"] == "target2") {
        assert_eq!(result["status"], "error", "{result}");
        assert!(
            result["reason"]
                .as_str()
                .unwrap()
                .contains("host key of target2 (alice@10.77.0.12:22) changed"),
            "{result}"
        );
    }
    assert_eq!(status(&results, "target3", "LIN-SSH-001")["status"], "pass");
}
