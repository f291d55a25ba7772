//! A person's L2 decisions while `osirisd` runs: `osiris flywheel approve` goes through the local
//! API and the promoted rule is in the daemon's L1 rules at once (no restart); `osiris l2
//! reject` drops a waiting plan; unknown and malformed ids get clear errors; each decision is
//! sealed with the caller's uid from the kernel beside the name they typed.

#![allow(clippy::unwrap_used, reason = "tests")]

mod daemon_proc;

use daemon_proc::{osiris, start_answering, text};

/// An executed L2 plan that fixed LIN-SSH-001 on `host`, as the heal path seals it.
fn executed_plan(host: &str) -> evidence::BundleDraft {
    let body = test_support::llm::executed_plan_body(host, "fixed");
    // The body must be what the heal path writes, or the flywheel would not read it.
    let _: evidence_schema::L2Body = serde_json::from_value(body.clone()).unwrap();
    evidence::BundleDraft {
        site: "test".to_owned(),
        kind: "l2".to_owned(),
        catalog: "test".to_owned(),
        time: time::OffsetDateTime::now_utc(),
        body,
    }
}

#[test]
fn decisions_reach_the_running_daemon_and_are_sealed_with_the_callers_uid() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let socket = dir.path().join("run/api.sock");
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"test\"\ndata_dir = \"{}\"\ntarget = []\n[evidence]\ncalendars = []\n[daemon]\nsocket = \"{}\"\n",
            data_dir.display(),
            socket.display()
        ),
    )
    .unwrap();
    // Six verified L2 fixes on three hosts make a proposed pattern; one plan waits for a person.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (first_seq, plan_seq) = runtime.block_on(async {
        let store = ops::setup::open_store(&data_dir, "test").await.unwrap();
        let mut first = 0;
        for host in ["pc1", "pc1", "pc2", "pc2", "pc3", "pc3"] {
            let seq = store.append(executed_plan(host)).await.unwrap().seq;
            first = if first == 0 { seq } else { first };
        }
        let plan = store.append(executed_plan("pc4")).await.unwrap().seq;
        store.close().await;
        (first, plan)
    });
    assert!(first_seq > 0);
    let plan_id = format!("l2-{plan_seq}");
    std::fs::write(
        data_dir.join("l2-pending.json"),
        serde_json::to_string(&serde_json::json!([{
            "id": plan_id, "l2_seq": plan_seq, "target": "pc4", "check": "LIN-FW-001",
            "runbook": "LIN-FW-001", "params": {}, "confidence": 0.8,
            "rationale": "the firewall is off", "at": 1_764_000_000,
        }]))
        .unwrap(),
    )
    .unwrap();

    let daemon = start_answering(&config, &socket, &dir.path().join("osirisd.log"));

    // The store is the daemon's now; the listing comes through the API.
    let out = osiris(&config, &["flywheel", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(
        listed.contains("proposed  LIN-SSH-001 → LIN-SSH-001  7/7 verified on 4 hosts"),
        "{listed}"
    );
    let pattern = listed.split_whitespace().next().unwrap().to_owned();
    assert!(pattern.starts_with("fw-"), "{listed}");

    // Malformed and unknown ids are refused by the daemon with what to do.
    let out = osiris(
        &config,
        &["flywheel", "approve", "fw-../../x", "--by", "Dr. Smith"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`fw-../../x` is not a flywheel pattern id"),
        "{}",
        text(&out.stderr)
    );
    let out = osiris(
        &config,
        &["flywheel", "approve", "fw-0000000000", "--by", "Dr. Smith"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no flywheel pattern `fw-0000000000`"),
        "{}",
        text(&out.stderr)
    );

    // The approval is in effect at once: the running daemon's rules include the pattern's.
    let out = osiris(
        &config,
        &["flywheel", "approve", &pattern, "--by", "Dr. Smith"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("{pattern}: approved (sealed as bundle ")),
        "{}",
        text(&out.stdout)
    );
    let out = osiris(&config, &["flywheel", "list"]);
    assert!(
        text(&out.stdout).contains(&format!("{pattern}  promoted (in effect) LIN-SSH-001")),
        "{}",
        text(&out.stdout)
    );
    // A second approval of a promoted pattern is refused.
    let out = osiris(
        &config,
        &["flywheel", "approve", &pattern, "--by", "Dr. Smith"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is promoted, not proposed"),
        "{}",
        text(&out.stderr)
    );

    // A waiting plan is rejected through the daemon and leaves the list.
    let out = osiris(&config, &["l2", "reject", "l2-999999", "--by", "Dr. Smith"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no L2 plan `l2-999999` waits for approval"),
        "{}",
        text(&out.stderr)
    );
    let out = osiris(&config, &["l2", "reject", &plan_id, "--by", "Dr. Smith"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("{plan_id}: rejected (sealed as bundle ")),
        "{}",
        text(&out.stdout)
    );
    let out = osiris(&config, &["l2", "list"]);
    assert_eq!(text(&out.stdout), "no L2 plans wait for approval\n");

    // Stopped: both decisions are in the log with the caller's uid.
    drop(daemon);
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let actions = runtime.block_on(async {
        let store = ops::setup::open_store(&data_dir, "test").await.unwrap();
        let mut actions = Vec::new();
        let mut seq = plan_seq + 1;
        while let Some(entry) = store.entry(seq).await.unwrap() {
            let line: serde_json::Value = serde_json::from_slice(&entry.line).unwrap();
            if line["kind"] == "operator_action" {
                actions.push(line["body"].clone());
            }
            seq += 1;
        }
        store.close().await;
        actions
    });
    let summary: Vec<(String, String, Option<u64>)> = actions
        .iter()
        .map(|body| {
            (
                body["action"].as_str().unwrap().to_owned(),
                body["by"].as_str().unwrap().to_owned(),
                body["peer"]["uid"].as_u64(),
            )
        })
        .collect();
    let uid = u64::from(uid.unwrap());
    assert_eq!(
        summary,
        vec![
            (
                "flywheel_approve".to_owned(),
                "Dr. Smith".to_owned(),
                Some(uid)
            ),
            ("l2_reject".to_owned(), "Dr. Smith".to_owned(), Some(uid)),
        ]
    );
    // The daemon is not running: the CLI opens the store itself again.
    let out = osiris(&config, &["flywheel", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("{pattern}  promoted  LIN-SSH-001")),
        "{}",
        text(&out.stdout)
    );
}
