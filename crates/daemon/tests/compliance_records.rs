//! `osiris attest` and `osiris exception add` while `osirisd` runs: the daemon holds the store,
//! so the records go through its local API, are checked again there (unknown targets, checks and
//! controls, past dates, a document outside the data directory refused), sealed, and count in the
//! compliance figures at once (no restart).

#![allow(clippy::unwrap_used, reason = "tests")]

mod daemon_proc;

use daemon_proc::{osiris, start_answering, text};

fn hipaa_passing(client: &api::Client) -> u32 {
    let status = client.status().unwrap();
    status
        .compliance
        .iter()
        .find(|f| f.framework == "HIPAA")
        .map_or(0, |f| f.passing)
}

#[test]
fn attestations_and_exceptions_are_sealed_through_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let socket = dir.path().join("run/api.sock");
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"test\"\ndata_dir = \"{}\"\n\n[[target]]\nname = \"pacs-01\"\nplatform = \"linux\"\ntransport = \"ssh\"\naddress = \"192.0.2.10\"\nuser = \"osiris\"\nkey_file = \"{}\"\n\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\nserver_scan_secs = 86400\n",
            data_dir.display(),
            dir.path().join("id_ed25519").display(),
            socket.display()
        ),
    )
    .unwrap();
    let daemon = start_answering(&config, &socket, &dir.path().join("osirisd.log"));
    let client = api::Client::new(&socket);
    let expires = (time::OffsetDateTime::now_utc().date() + time::Duration::days(90)).to_string();
    let before = hipaa_passing(&client);

    // An attestation with its document: kept, sealed by the daemon, counted at once.
    std::fs::write(dir.path().join("risk.txt"), "Our risk analysis.\n").unwrap();
    let risk = dir.path().join("risk.txt");
    let out = osiris(
        &config,
        &[
            "attest",
            "hipaa:164.308(a)(1)(ii)(A)",
            "--statement",
            "Risk analysis reviewed",
            "--file",
            risk.to_str().unwrap(),
            "--by",
            "Dr. Ada Example",
            "--expires",
            &expires,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with("attestation of HIPAA 164.308(a)(1)(ii)(A) by Dr. Ada Example until "),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        hipaa_passing(&client),
        before + 1,
        "counted without a restart"
    );

    // An exception for a configured target; an unknown target and check are refused by the CLI
    // and, sent directly, by the daemon.
    let out = osiris(
        &config,
        &[
            "exception",
            "add",
            "LIN-SSH-002",
            "--target",
            "pacs-01",
            "--reason",
            "vendor appliance needs passwords",
            "--compensating",
            "reachable from the imaging VLAN only",
            "--owner",
            "Dr. Ada Example",
            "--expires",
            &expires,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("exception for LIN-SSH-002 on pacs-01 until "),
        "{}",
        text(&out.stdout)
    );
    let exception = |target: &str, check: &str, expires: &str| api::ComplianceRecordRequest {
        kind: "exception".into(),
        body: serde_json::json!({
            "check": check, "target": target, "reason": "r", "compensating": "c",
            "owner": "o", "expires": expires,
        }),
    };
    for (request, want) in [
        (
            exception("nobody-01", "LIN-SSH-002", &expires),
            "unknown target `nobody-01`",
        ),
        (
            exception("pacs-01", "NOPE-001", &expires),
            "unknown check `NOPE-001`",
        ),
        (
            exception("pacs-01", "LIN-SSH-002", "2001-01-01"),
            "is in the past",
        ),
        (
            api::ComplianceRecordRequest {
                kind: "attestation".into(),
                body: serde_json::json!({
                    "control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "s", "by": "b",
                    "expires": expires,
                    "document": {"name": "x", "sha256": "00".repeat(32), "size": 1,
                                 "stored_as": "../../etc/passwd"},
                }),
            },
            "document is not kept in the data directory",
        ),
        (
            api::ComplianceRecordRequest {
                kind: "verdict".into(),
                body: serde_json::json!({}),
            },
            "`verdict` is not a compliance record",
        ),
    ] {
        let err = client
            .call(&api::endpoint::SealComplianceRecord, &request)
            .unwrap_err();
        assert!(err.to_string().contains(want), "{want}: {err}");
    }

    // Both sealed, once each; nothing refused reached the log.
    drop(daemon);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kinds = runtime.block_on(async {
        let store = ops::setup::open_store(&data_dir, "test").await.unwrap();
        let mut kinds = Vec::new();
        let mut seq = 0;
        while let Some(entry) = store.entry(seq).await.unwrap() {
            let line: serde_json::Value = serde_json::from_slice(&entry.line).unwrap();
            kinds.push(line["kind"].as_str().unwrap().to_owned());
            seq += 1;
        }
        store.close().await;
        kinds
    });
    let records: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| *k == "attestation" || *k == "exception")
        .collect();
    assert_eq!(records, vec!["attestation", "exception"], "{kinds:?}");
}
