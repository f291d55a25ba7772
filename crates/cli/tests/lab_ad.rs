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

    // The RMM's inventory reconciled with the directory's (issue 20, item 4).
    let rmm = rmm_reconciles_with_the_directory(work.path(), &lab, &config, &second["inventory"]);

    // The inventory is signed evidence: two inventory bundles, and the kit verifies.
    let data_dir = lab.dir.join("osiris-data");
    let bundles = verified_kit(work.path(), &data_dir, "kit");
    let sealed: Vec<&serde_json::Value> = bundles
        .iter()
        .filter(|b| b["kind"] == "rmm_inventory")
        .collect();
    // Two good imports (text, then JSON); the refused one recorded nothing.
    assert_eq!(sealed.len(), 2);
    assert_eq!(sealed[1]["body"], rmm);
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

/// A Datto RMM peer that knows the directory's enabled, in-use computers except three, one
/// disabled computer, the computer deleted from the directory above and a workgroup laptop;
/// `osiris rmm import` must place every machine on the right side and seal the result. Returns
/// the body it printed.
fn rmm_reconciles_with_the_directory(
    dir: &std::path::Path,
    lab: &Lab,
    config: &std::path::Path,
    inventory: &serde_json::Value,
) -> serde_json::Value {
    use std::io::Write as _;

    let python = test_support::python::reference_python().unwrap();
    let key = |c: &serde_json::Value| {
        c["dns_host_name"]
            .as_str()
            .map(|d| d.split('.').next().unwrap().to_lowercase())
            .unwrap_or_else(|| {
                c["account"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches('$')
                    .to_lowercase()
            })
    };
    let computers = inventory["computers"].as_array().unwrap();
    let in_use: Vec<&serde_json::Value> = computers
        .iter()
        .filter(|c| c["disabled"] == false && c["stale"] == false)
        .collect();
    // Machines whose DNS name another computer shares match together; keep them out of the
    // choices so each choice decides its own line.
    let unique = |c: &&serde_json::Value| c["duplicate_dns_host_name"] == false;
    let without_agent: Vec<String> = in_use
        .iter()
        .copied()
        .filter(unique)
        .take(3)
        .map(key)
        .collect();
    let disabled = computers
        .iter()
        .filter(unique)
        .find(|c| c["disabled"] == true)
        .unwrap();
    let mut devices: Vec<serde_json::Value> = in_use
        .iter()
        .filter(|c| !without_agent.contains(&key(c)))
        .copied()
        .chain(std::iter::once(disabled))
        .map(|c| serde_json::json!({"hostname": key(c).to_ascii_uppercase(), "domain": "LAB"}))
        .collect();
    devices.push(serde_json::json!({"hostname": "WSNEW", "domain": "LAB", "online": false}));
    devices.push(serde_json::json!({"hostname": "HOME-LAPTOP", "domain": "WORKGROUP"}));
    let devices_file = lab.dir.join("rmm-devices.json");
    std::fs::write(&devices_file, serde_json::to_vec(&devices).unwrap()).unwrap();
    let peer = test_support::rmm::FakeRmm::start(
        &python,
        test_support::rmm::Vendor::Datto,
        &["--devices", devices_file.to_str().unwrap()],
    );

    // The API secret goes into the vault through stdin, the table into the configuration.
    let rmm_config = lab.dir.join("rmm.toml");
    std::fs::write(
        &rmm_config,
        format!(
            "{}\n{}",
            std::fs::read_to_string(config).unwrap(),
            peer.rmm_table("datto", "datto-api-secret")
        ),
    )
    .unwrap();
    let credentials = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_osiris"))
            .args(["credentials", "--config", rmm_config.to_str().unwrap()])
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(secret) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(secret.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    // The lab's configuration may already have a vault key; a second init-key is refused.
    let _ = credentials(&["init-key"], None);
    let out = credentials(
        &["set", "datto-api-secret", "--kind", "password"],
        Some(test_support::rmm::SECRET),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = osiris(
        dir,
        &["rmm", "import", "--config", rmm_config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!(
            "against {} computers of lab.example",
            computers.len()
        )),
        "{shown}"
    );
    assert!(!shown.contains(test_support::rmm::SECRET));
    let out = osiris(
        dir,
        &[
            "rmm",
            "import",
            "--json",
            "--config",
            rmm_config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let body = json["imported"][0]["inventory"].clone();
    let standing: BTreeMap<String, String> = body["reconciliation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_owned(),
                l["standing"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Every directory computer has its line; its standing follows from the two inventories.
    for computer in computers {
        let name = key(computer);
        let want = if without_agent.contains(&name) {
            "directory_only"
        } else if computer["disabled"] == true && name == key(disabled) {
            "matched"
        } else if computer["disabled"] == true || computer["stale"] == true {
            "directory_only_inactive"
        } else {
            "matched"
        };
        assert_eq!(standing[&name], want, "{name}");
    }
    assert_eq!(standing["wsnew"], "rmm_only");
    assert_eq!(standing["home-laptop"], "rmm_only");
    assert_eq!(body["counts"]["rmm_only"], 2);
    assert_eq!(body["counts"]["directory_only"], 3);
    assert_eq!(body["counts"]["devices"], devices.len() as u64);
    let line = |name: &str| {
        body["reconciliation"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()
            .clone()
    };
    assert!(
        line("wsnew")["note"]
            .as_str()
            .unwrap()
            .contains("deleted computer object"),
        "{body}"
    );
    assert!(
        line(&key(disabled))["note"]
            .as_str()
            .unwrap()
            .contains("disabled in the directory but online in the RMM")
    );
    // The second import's bundle names the directory inventory it was reconciled with.
    assert!(
        body["directory"]["inventory_seq"].as_u64().is_some(),
        "{body}"
    );

    // A revoked secret: the import fails, says what to check, and records nothing.
    let out = credentials(
        &["set", "datto-api-secret", "--kind", "password"],
        Some("revoked-secret"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = osiris(
        dir,
        &["rmm", "import", "--config", rmm_config.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("Bad credentials")
            && text(&out.stdout).contains("nothing recorded"),
        "{}",
        text(&out.stdout)
    );
    body
}
