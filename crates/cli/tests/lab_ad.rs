//! Active Directory discovery end to end (issue 5, first part): the lab's real Samba AD DC seeded
//! with more than 1,000 computers; `osiris discover` must list exactly the seeded computers with
//! their classes and flags, page past AD's 1,000-entry limit, record a signed inventory bundle, and
//! refuse a wrong bind password with AD's own words. Needs root (namespaces).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{LAB_TOOLS, Lab, osiris, scan_json, text, verified_kit};

#[test]
fn discovery_lists_exactly_the_seeded_computers_and_records_them() {
    if !test_support::require_root(
        "discovery_lists_exactly_the_seeded_computers_and_records_them",
        &[LAB_TOOLS, &["samba"]].concat(),
    ) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let lab = Lab::up(
        &work.path().join("lab"),
        &[
            ("LAB_TARGETS", "1"),
            ("LAB_WIN_TARGETS", "3"),
            (
                "LAB_WIN_PROFILES",
                "workstation-drift workstation-clean workstation-drift",
            ),
            ("DC_SEED", "big"),
        ],
    );
    let config = lab.dir.join("site.toml");

    let out = osiris(
        work.path(),
        &["discover", "--json", "--config", config.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inventory = &json["inventory"];

    // Exactly the seeded computers, each with the class and flags the seed gave it.
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.join("dc/expected.json")).unwrap())
            .unwrap();
    let want: BTreeMap<String, &serde_json::Value> = expected["computers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["sam_account_name"].as_str().unwrap().to_lowercase(), c))
        .collect();
    let got: BTreeMap<String, &serde_json::Value> = inventory["computers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["account"].as_str().unwrap().to_lowercase(), c))
        .collect();
    assert!(got.len() > 1000, "paging: only {} computers", got.len());
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (account, computer) in &got {
        let seeded = want[account];
        assert_eq!(computer["class"], seeded["class"], "{account}");
        assert_eq!(computer["disabled"], seeded["disabled"], "{account}");
        assert_eq!(
            computer["duplicate_dns_host_name"], seeded["duplicate_dns_host_name"],
            "{account}"
        );
        // The seed fixes "now"; a computer stale then is stale later too.
        if seeded["stale"] == true {
            assert_eq!(computer["stale"], true, "{account}");
        }
    }
    assert_eq!(inventory["counts"]["total"], got.len() as u64);
    // Hostile attribute values arrive escaped, never as raw control characters.
    assert!(inventory["computers"].as_array().unwrap().iter().all(|c| {
        !c["operating_system"]
            .as_str()
            .unwrap_or("")
            .chars()
            .any(char::is_control)
    }));

    // A workstation leaves the domain: the next inventory records it as an evidence event.
    let admin = std::fs::read_to_string(lab.dir.join("dc/samba/admin-password")).unwrap();
    let out = Command::new("samba-tool")
        .args(["computer", "delete", "WSNEW", "-H", "ldap://10.77.0.2"])
        .arg(format!("-UAdministrator%{}", admin.trim()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "samba-tool computer delete: {}",
        text(&out.stderr)
    );
    let out = osiris(
        work.path(),
        &["discover", "--json", "--config", config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        second["inventory"]["changes"],
        serde_json::json!([{"change": "disappeared", "account": "WSNEW$", "from": null, "to": null}])
    );
    assert_eq!(second["inventory"]["counts"]["total"], got.len() as u64 - 1);

    // A wrong bind password: AD's own error text, exit 1, nothing recorded.
    let bad_password = lab.dir.join("bad-password");
    std::fs::write(&bad_password, "not-the-password\n").unwrap();
    std::fs::set_permissions(
        &bad_password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let text_config = std::fs::read_to_string(&config).unwrap();
    let wrong = lab.dir.join("wrong.toml");
    let original_password = text_config
        .lines()
        .find(|l| l.starts_with("password_file") && l.contains("bind-password"))
        .unwrap();
    std::fs::write(
        &wrong,
        text_config.replace(
            original_password,
            &format!("password_file = {:?}", bad_password.display().to_string()),
        ),
    )
    .unwrap();
    let out = osiris(
        work.path(),
        &["discover", "--config", wrong.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("data 52e"),
        "{}",
        text(&out.stderr)
    );

    // The inventory is signed evidence: two inventory bundles, and the kit verifies.
    let data_dir = lab.dir.join("osiris-data");
    let bundles = verified_kit(work.path(), &data_dir, "kit");
    let inventories: Vec<&serde_json::Value> = bundles
        .iter()
        .filter(|b| b["kind"] == "inventory")
        .collect();
    assert_eq!(inventories.len(), 2);
    assert_eq!(inventories[0]["body"]["counts"]["total"], got.len() as u64);

    // The workstation cycle: three of the directory's workstations are in DNS and answer WinRM
    // (the lab's peer hosts); every other known workstation must be accounted for, not dropped.
    let env = &lab.env;
    let peers: Vec<&str> = env["LAB_WIN_HOSTS"].split_whitespace().collect();
    for (name, ip) in ["ws001", "ws002", "ws003"].iter().zip(&peers) {
        lab.dns_add(name, ip);
    }
    // The workstation login is a domain account that logs in by Kerberos (the default): its
    // password goes only to the DC's KDC, and each workstation proves its HTTP service key.
    let mut ws_config = std::fs::read_to_string(&config).unwrap();
    ws_config.push_str(&format!(
        "\n[workstations]\nuser = \"administrator@{}\"\npassword_file = {:?}\nca_file = {:?}\nscope = \"OU=Workstations,{}\"\n",
        env["LAB_DC_DOMAIN"],
        lab.dir.join("dc/samba/admin-password"),
        env["LAB_CA"],
        env["LAB_DC_BASE_DN"]
    ));
    let ws_toml = lab.dir.join("workstations.toml");
    std::fs::write(&ws_toml, ws_config).unwrap();
    let scan = scan_json(work.path(), &ws_toml);
    let summary = &scan["workstations"];
    // Every seeded workstation but the one deleted above.
    let known = want
        .values()
        .filter(|c| c["class"] == "workstation")
        .count() as u64
        - 1;
    assert_eq!(summary["known"], known);
    assert_eq!(summary["checked"], 3, "{summary:#}");
    assert_eq!(
        summary["not_checked"].as_array().unwrap().len() as u64,
        known - 3
    );
    assert_eq!(
        summary["compliant"].as_u64().unwrap() + summary["drifted"].as_u64().unwrap(),
        3
    );
    assert_eq!(
        summary["drifted"], 2,
        "two peers run the workstation-drift profile: {summary:#}"
    );
    assert_eq!(summary["coverage_permille"], 3 * 1000 / known);
    let disabled = summary["not_checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["reason"] == "disabled in Active Directory")
        .count();
    assert_eq!(
        disabled as u64,
        want.values()
            .filter(|c| c["class"] == "workstation" && c["disabled"] == true)
            .count() as u64
    );
    // Workstations get the workstation profile: BitLocker, Defender, patches, firewall, screen lock.
    assert_eq!(
        summary["checks"].as_object().unwrap().len(),
        5,
        "{summary:#}"
    );
    // Per-device results for the checked workstations, by their directory names.
    let results = scan["results"].as_array().unwrap();
    for name in [
        "ws001.lab.example",
        "ws002.lab.example",
        "ws003.lab.example",
    ] {
        assert!(
            results
                .iter()
                .any(|r| r["target"] == name && r["status"] == "pass"),
            "{name}"
        );
        assert!(
            !results
                .iter()
                .any(|r| r["target"] == name && r["status"] == "error"),
            "{name}: {results:#?}"
        );
    }
    // Each checked workstation was reached by Kerberos with a ticket for the lab's account, its
    // channel binding naming the peer's certificate; no Kerberos attempt was refused.
    let peer_log = std::fs::read_to_string(&env["LAB_WIN_LOG"]).unwrap();
    let kerberos: Vec<serde_json::Value> = peer_log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["method"] == "kerberos")
        .collect();
    assert!(
        kerberos.iter().all(|entry| entry.get("error").is_none()),
        "{kerberos:#?}"
    );
    for ip in &peers[..3] {
        assert!(
            kerberos
                .iter()
                .any(|entry| entry["host"] == *ip
                    && entry["principal"] == "administrator@LAB.EXAMPLE"),
            "no Kerberos login reached {ip}: {kerberos:#?}"
        );
    }
    let bundles = verified_kit(work.path(), &data_dir, "kit2");
    // One bundle per discovered workstation (the lab's own win1..3 targets are configured ones).
    let devices = bundles
        .iter()
        .filter(|b| {
            b["kind"] == "scan"
                && b["body"]["target"]["device_type"] == "workstation"
                && b["body"]["target"]["name"]
                    .as_str()
                    .unwrap()
                    .ends_with(".lab.example")
        })
        .count();
    assert_eq!(devices, 3);
    let summaries: Vec<_> = bundles
        .iter()
        .filter(|b| b["kind"] == "workstation_summary")
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(&summaries[0]["body"], summary);

    // An impostor at the workstations' addresses, even one holding a certificate the appliance
    // trusts for their names, gets only tickets it cannot open: without the workstations' own
    // service keys (the peer's keytab taken away) every login fails, and the appliance reports an
    // authentication error instead of results. Nothing it received is crackable or relayable.
    std::fs::rename(
        lab.dir.join("dc/http.keytab"),
        lab.dir.join("dc/http.keytab.away"),
    )
    .unwrap();
    let before = peer_log.lines().count();
    let out = osiris(
        work.path(),
        &["scan", "--json", "--config", ws_toml.to_str().unwrap()],
    );
    let scan: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}\n{}", text(&out.stdout), text(&out.stderr)));
    let results = scan["results"].as_array().unwrap();
    for name in [
        "ws001.lab.example",
        "ws002.lab.example",
        "ws003.lab.example",
    ] {
        let mine: Vec<_> = results.iter().filter(|r| r["target"] == name).collect();
        assert!(!mine.is_empty(), "{name}: {results:#?}");
        assert!(
            mine.iter().all(|r| r["status"] == "error"
                && r["reason"].as_str().unwrap().contains("authentication")),
            "{name}: {mine:#?}"
        );
    }
    let peer_log = std::fs::read_to_string(&env["LAB_WIN_LOG"]).unwrap();
    let refused: Vec<serde_json::Value> = peer_log
        .lines()
        .skip(before)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["method"] == "kerberos")
        .collect();
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|entry| entry["error"].as_str().is_some() && entry.get("user").is_none()),
        "{refused:#?}"
    );
}
