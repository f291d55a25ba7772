//! Real `osirisd` appliances linked to the real `osiris-central` (issue 15's acceptance, on
//! loopback): two appliances claimed into two partners push and are witnessed; one catches up
//! after Central Command was away; a kit exported afterwards verifies with `--witness-key`;
//! a rewritten log is refused as a fork and alerted to its partner only.
//! Needs the workspace's `osirisd` and `osiris` binaries (built by `cargo test --workspace`).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest as _;
use test_support::postgres::PgServer;

mod common;
use common::{AgentVendor, Server, central, channel_sql, ok, psql, setup, signed_manifest, text};

fn sibling(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_osiris-central")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        path.display()
    );
    path
}

struct Daemon(Child);

impl Daemon {
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An appliance's configuration: scans this machine every 5 s (healing paused: a test must never
/// change the machine it runs on), checkpoints every 5 s, links to Central Command at `port`;
/// its image updater's state (with the spool the daemon owns) in `<dir>/<name>-update`.
fn appliance_config(dir: &Path, name: &str, data: &Path, port: u16, ca: &Path) -> PathBuf {
    let config = dir.join(format!("{name}.toml"));
    std::fs::create_dir_all(dir.join(format!("{name}-update/spool"))).unwrap();
    std::fs::write(
        &config,
        format!(
            "site = \"{name}\"\ndata_dir = \"{data}\"\n[evidence]\ncalendars = []\n[healing]\npaused = true\n[daemon]\nsocket = \"{dir}/{name}.sock\"\nserver_scan_secs = 5\ndrift_rescan_secs = 5\ncheckpoint_secs = 5\njitter_percent = 0\nupdate_state_dir = \"{dir}/{name}-update\"\n[central]\nurl = \"https://127.0.0.1:{port}\"\nca_file = \"{ca}\"\npush_secs = 5\n",
            data = data.display(),
            dir = dir.display(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    config
}

/// Starts `osirisd` on `config`, its log in `config` with the extension `log`.
fn start_daemon(config: &Path) -> Daemon {
    let log = std::fs::File::create(config.with_extension("log")).unwrap();
    Daemon(
        Command::new(sibling("osirisd"))
            .args(["--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Polls `sql` until `done` holds for its answer (60 s at most).
fn wait_for(pg: &PgServer, sql: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = psql(pg, sql);
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "waited 60 s for {what}; last answer: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn claim_code(data: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(code) = std::fs::read_to_string(data.join("claim-code")) {
            return code.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no claim code in {}",
            data.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn head_size(pg: &PgServer, appliance: i64) -> u64 {
    psql(
        pg,
        &format!(
            "SELECT coalesce(max(size), 0) FROM witness_heads WHERE appliance_id = {appliance}"
        ),
    )
    .parse()
    .unwrap()
}

#[test]
fn appliances_of_two_partners_are_witnessed_catch_up_and_a_rewritten_log_is_refused() {
    let Some(pg) = PgServer::start(
        "appliances_of_two_partners_are_witnessed_catch_up_and_a_rewritten_log_is_refused",
    ) else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, witness_key) = setup(dir, &url, &["Acme IT", "Beta MSP"]);
    let ca = dir.join("server-ca.pem");
    std::fs::write(&ca, &server_ca).unwrap();
    let server = Server::start(dir, &url, port);

    let (a_data, b_data) = (dir.join("a-data"), dir.join("b-data"));
    let a_config = appliance_config(dir, "clinic-a", &a_data, port, &ca);
    let b_config = appliance_config(dir, "clinic-b", &b_data, port, &ca);
    let a = start_daemon(&a_config);
    let b = start_daemon(&b_config);

    // Each partner types the code its appliance's console shows, once the appliance has asked.
    wait_for(
        &pg,
        "SELECT count(*) FROM enrollments",
        "both enrollment requests",
        |n| n == "2",
    );
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", &claim_code(&a_data)],
    ));
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "2", &claim_code(&b_data)],
    ));
    wait_for(
        &pg,
        "SELECT count(*) FROM witness_heads WHERE size > 0",
        "both logs witnessed",
        |n| n == "2",
    );
    let owners = psql(
        &pg,
        "SELECT a.id || ':' || a.partner_id FROM appliances a JOIN witness_heads h ON h.appliance_id = a.id ORDER BY a.id",
    );
    assert_eq!(owners, "1:1\n2:2");
    // Each appliance reported the machine it scans, with a verdict and counts.
    wait_for(
        &pg,
        "SELECT count(DISTINCT appliance_id) FROM devices WHERE checks_total > 0",
        "device snapshots",
        |n| n == "2",
    );

    // Its incidents follow: one open incident per failing check of its snapshot (healing is
    // paused, so they stay open), and its software and update state.
    let failing =
        "SELECT coalesce(string_agg(d.name || '/' || f, ',' ORDER BY d.name || '/' || f), '')
                   FROM devices d, jsonb_array_elements_text(d.failing) f WHERE d.appliance_id = 1";
    let open = "SELECT coalesce(string_agg(device || '/' || check_id, ',' ORDER BY device || '/' || check_id), '')
                FROM incidents WHERE appliance_id = 1 AND phase IN ('open', 'healing', 'escalated')";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (failing, open) = (psql(&pg, failing), psql(&pg, open));
        if !open.is_empty() && failing == open {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the incidents never matched the failing checks (this machine fails some checks of the catalogue on a fresh install): failing {failing:?}, incidents {open:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        wait_for(
            &pg,
            "SELECT coalesce(software_version || ' ' || update_state, '') FROM appliances WHERE id = 1",
            "the update state",
            |s| !s.is_empty(),
        ),
        format!("{} unavailable", env!("CARGO_PKG_VERSION")),
        "the osiris version it runs; no image updater on a test machine"
    );

    // A's partner asks for an evidence kit: the appliance delivers it at its next contact,
    // Central Command verifies it (A's key pinned, the witness's cosignature required) and keeps
    // it; downloaded, it verifies offline with the witness key alone.
    psql(
        &pg,
        "INSERT INTO kit_requests (partner_id, appliance_id, requested_by, period_from, period_to)
         SELECT 1, 1, id, '2026-11-01', '2026-11-30' FROM users WHERE partner_id = 1 LIMIT 1",
    );
    let delivered = wait_for(
        &pg,
        "SELECT status || ' ' || coalesce((bundles > 0)::text, '-') || ' ' || coalesce((witnessed_size > 0)::text, '-') || ' ' || problems::text FROM kit_requests WHERE id = 1",
        "the kit to be delivered and verified",
        |s| !s.starts_with("pending"),
    );
    assert_eq!(delivered, "verified true true []");
    let kit_b64 = psql(
        &pg,
        "SELECT encode(kit, 'base64') FROM kit_requests WHERE id = 1",
    );
    let kit_bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        kit_b64.replace('\n', ""),
    )
    .unwrap();
    let unpacked = dir.join("downloaded-kit");
    tar::Archive::new(kit_bytes.as_slice())
        .unpack(&unpacked)
        .unwrap();
    let out = Command::new(sibling("osiris"))
        .args(["evidence", "verify"])
        .arg(unpacked.join("osiris-kit-1"))
        .args(["--witness-key", &witness_key])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Fleet: the partner rolls out a vendor-signed release; A's daemon hands the vendor's bytes to
    // its updater, whose own check accepts them against the vendor key it pins.
    let (manifest, vendor) = signed_manifest(7, "1.2.0", 1);
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
    let mut central_toml = std::fs::read_to_string(dir.join("central.toml")).unwrap();
    central_toml.push_str(&format!("\n[fleet]\nvendor_key = \"{vendor}\"\n"));
    std::fs::write(dir.join("central.toml"), central_toml).unwrap();
    ok(&central(
        dir,
        &url,
        &["admin", "release", "add", "--manifest", "manifest.json"],
    ));
    psql(
        &pg,
        "INSERT INTO rollouts (partner_id, release_id, percent, practices, updated_by) SELECT 1, id, 0, '{1}', 'test' FROM releases",
    );
    let offered = dir.join("clinic-a-update/spool/offered-manifest.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(&offered).ok().as_deref() != Some(manifest.as_slice()) {
        assert!(
            Instant::now() < deadline,
            "the offered release never reached A's updater"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        !dir.join("clinic-b-update/spool/offered-manifest.json")
            .exists(),
        "B's partner offered nothing"
    );
    let cache_key = format!(
        "osiris-cache-1:{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])
    );
    let esp = dir.join("esp");
    std::fs::create_dir_all(esp.join("loader/entries")).unwrap();
    let update_toml = dir.join("update.toml");
    std::fs::write(
        &update_toml,
        format!(
            "manifest_url = \"file://{offered}\"\nvendor_key = \"{vendor}\"\ncache_keys = [\"{cache_key}\"]\ninstalled_version = \"1.0.0\"\nstate_dir = \"{state}\"\nesp = \"{esp}\"\nefivars = \"{esp}/efivars\"\nappliance_config = \"{config}\"\n",
            offered = offered.display(),
            state = dir.join("clinic-a-update").display(),
            esp = esp.display(),
            config = a_config.display(),
        ),
    )
    .unwrap();
    let out = Command::new(sibling("osiris"))
        .args(["update", "--config", update_toml.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("update 1.2.0 is available (installed 1.0.0)"),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // The partner's escalation channel reaches A (not B): its secret lands in A's credential
    // vault, the channel list beside it, and the daemon delivers to it from now on.
    let secret = "https://hooks.slack.example/services/T0/B0/acme-oncall-secret";
    psql(&pg, &channel_sql(dir, 1, "oncall", "slack", secret));
    let listed = a_data.join("partner-channels.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&listed).is_ok_and(|t| t.contains("\"oncall\"")) {
        assert!(
            Instant::now() < deadline,
            "the partner's channel never reached A"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let listed_text = std::fs::read_to_string(&listed).unwrap();
    assert!(!listed_text.contains("oncall-secret"), "{listed_text}");
    let vault = credentials::Vault::open(
        &a_data.join("credentials.vault"),
        &credentials::KeySource::File(a_data.join("keys/credentials.key")),
    )
    .unwrap();
    assert_eq!(
        vault
            .get("partner-channel-oncall")
            .unwrap()
            .expect("the secret in the vault")
            .secret
            .expose(),
        secret
    );
    assert!(
        !b_data.join("partner-channels.json").exists(),
        "B's partner set no channel"
    );

    // Central Command goes away; A keeps working; it comes back and A catches up.
    let before = head_size(&pg, 1);
    drop(server);
    std::thread::sleep(Duration::from_secs(12));
    let _server = Server::start(dir, &url, port);
    wait_for(
        &pg,
        "SELECT size FROM witness_heads WHERE appliance_id = 1",
        "A to catch up",
        |size| size.parse::<u64>().unwrap() > before,
    );
    // A kit exported afterwards verifies with the partner's witness key alone.
    a.stop();
    b.stop();
    // Both sides agree on the next push sequence number: every push was taken, in order, once.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a_data.join("central/state.json")).unwrap()).unwrap();
    let next_seq = psql(&pg, "SELECT next_seq FROM appliances WHERE id = 1");
    assert_eq!(state["next_seq"].to_string(), next_seq);
    let cosigned: u64 = psql(
        &pg,
        "SELECT count(*) FROM cosignatures WHERE appliance_id = 1",
    )
    .parse()
    .unwrap();
    assert!(
        next_seq.parse::<u64>().unwrap() > cosigned,
        "each cosignature came from a push"
    );
    let kit = dir.join("kit-a");
    let out = Command::new(sibling("osiris"))
        .args([
            "evidence",
            "export",
            "--data-dir",
            a_data.to_str().unwrap(),
            "--out",
            kit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = Command::new(sibling("osiris"))
        .args([
            "evidence",
            "verify",
            kit.to_str().unwrap(),
            "--witness-key",
            &witness_key,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("vouched for by the witness"),
        "{}",
        text(&out.stdout)
    );

    // A's site rewrites its history: same appliance key, same link, another log, longer than
    // what was witnessed. Central Command refuses it as a fork and alerts A's partner only.
    let witnessed = head_size(&pg, 1);
    let forged = dir.join("a-forged");
    std::fs::create_dir_all(forged.join("keys")).unwrap();
    for keep in ["keys/appliance.key", "claim-code"] {
        std::fs::copy(a_data.join(keep), forged.join(keep)).unwrap();
    }
    copy_dir(&a_data.join("central"), &forged.join("central"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store::Store::open(&store::StoreConfig { data_dir: forged.clone(), site: "clinic-a".into() })
            .await
            .unwrap();
        for n in 0..witnessed + 3 {
            store
                .append(evidence::BundleDraft {
                    site: "clinic-a".into(),
                    kind: "scan".into(),
                    catalog: "forged".into(),
                    time: time::OffsetDateTime::now_utc(),
                    body: serde_json::json!({"results": [], "n": n, "note": "everything passed, honestly"}),
                })
                .await
                .unwrap();
        }
        store.create_checkpoint().await.unwrap();
        store.close().await;
    });
    let forged_config = appliance_config(dir, "clinic-a", &forged, port, &ca);
    let _forged = start_daemon(&forged_config);
    let alert = wait_for(
        &pg,
        "SELECT partner_id || ' ' || severity || ' ' || kind FROM alerts",
        "the fork alert",
        |a| !a.is_empty(),
    );
    assert_eq!(alert, "1 critical evidence_fork");
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM witness_forks WHERE appliance_id = 1"
        ),
        "1"
    );
    assert_eq!(
        head_size(&pg, 1),
        witnessed,
        "the witnessed head did not move"
    );
    // A kit asked of the rewritten appliance is refused: its checkpoints carry no cosignature
    // of this witness. Nothing is kept to download; the partner is warned.
    psql(
        &pg,
        "INSERT INTO kit_requests (partner_id, appliance_id, requested_by)
         SELECT 1, 1, id FROM users WHERE partner_id = 1 LIMIT 1",
    );
    let refused = wait_for(
        &pg,
        "SELECT status || ' ' || (kit IS NULL) FROM kit_requests WHERE id = 2",
        "the forged kit to be judged",
        |s| !s.starts_with("pending"),
    );
    assert_eq!(refused, "refused true");
    let problems = psql(&pg, "SELECT problems::text FROM kit_requests WHERE id = 2");
    assert!(problems.contains("cosign"), "{problems}");
    assert_eq!(
        psql(
            &pg,
            "SELECT partner_id || ' ' || severity FROM alerts WHERE kind = 'kit_refused'"
        ),
        "1 warning"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The operator-action bundles of `data` (a stopped appliance's data directory) that came from
/// Central Command, as (seq, body), in log order.
fn central_actions_sealed(data: &Path, site: &str) -> Vec<(u64, serde_json::Value)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store::Store::open(&store::StoreConfig {
            data_dir: data.to_path_buf(),
            site: site.into(),
        })
        .await
        .unwrap();
        let mut found = Vec::new();
        for seq in 0..store.size() {
            let entry = store.entry(seq).await.unwrap().unwrap();
            if entry.kind != "operator_action" {
                continue;
            }
            let bundle: serde_json::Value = serde_json::from_slice(&entry.line).unwrap();
            if bundle["body"]["details"]["source"] == "central_command" {
                found.push((seq, bundle["body"].clone()));
            }
        }
        store.close().await;
        found
    })
}

/// A partner user acknowledges and comments on an incident in Central Command's API; the real
/// `osirisd` that reported it seals each action as an `operator_action` bundle (by the user's
/// e-mail, from Central Command), acknowledges the incident in its ledger — which comes back in
/// its next incidents push — and reports the bundles, which the API then shows. An action on an
/// incident the appliance no longer keeps is sealed all the same. After a crash between sealing
/// and recording, the action is found in the log and never sealed twice.
#[test]
fn an_acknowledgement_in_central_command_is_sealed_on_the_appliance() {
    let Some(pg) =
        PgServer::start("an_acknowledgement_in_central_command_is_sealed_on_the_appliance")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT"]);
    let ca = dir.join("server-ca.pem");
    std::fs::write(&ca, &server_ca).unwrap();
    let _server = Server::start(dir, &url, port);
    let data = dir.join("a-data");
    let config = appliance_config(dir, "clinic-a", &data, port, &ca);
    let daemon = start_daemon(&config);
    wait_for(
        &pg,
        "SELECT count(*) FROM enrollments",
        "the enrollment",
        |n| n == "1",
    );
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", &claim_code(&data)],
    ));
    // An incident the appliance reported (this machine fails some checks on a fresh install;
    // healing is paused, so it stays open).
    let found = wait_for(
        &pg,
        "SELECT coalesce(min(incident_id || ' ' || extract(epoch from opened_at)::bigint || ' ' || device), '')
         FROM incidents WHERE appliance_id = 1 AND phase IN ('open', 'escalated') AND NOT acknowledged",
        "an open incident",
        |s| !s.is_empty(),
    );
    let mut parts = found.splitn(3, ' ');
    let (incident, opened, device) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
    );
    // One the appliance does not keep (Central Command keeps incidents as history).
    psql(
        &pg,
        "INSERT INTO incidents (appliance_id, incident_id, opened_at, device, check_id, severity, phase, updated_at, occurrences, flapping, acknowledged)
         VALUES (1, 999999, to_timestamp(1764000000), 'GONE-01', 'WIN-BITLOCKER-001', 'high', 'escalated', to_timestamp(1764000000), 1, false, false)",
    );

    let path = format!("/v1/incidents/1/{incident}/{opened}");
    let comment = "<b>called the practice</b>\nthey will reboot tonight";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut admin = common::user::User::https(port, &server_ca);
    runtime.block_on(async {
        admin
            .enrol("admin1@1.example", "a long admin password")
            .await;
        for (path, body) in [
            (&path, serde_json::json!({"action": "acknowledge"})),
            (
                &path,
                serde_json::json!({"action": "comment", "text": comment}),
            ),
            (
                &"/v1/incidents/1/999999/1764000000".to_owned(),
                serde_json::json!({"action": "acknowledge"}),
            ),
        ] {
            let answer = admin.post(&format!("{path}/actions"), body).await;
            assert_eq!(answer.status, 202, "{}", answer.body);
        }
    });
    let sealed = "SELECT string_agg(id || ':' || coalesce(sealed_seq::text, '-'), ' ' ORDER BY id) FROM incident_actions";
    let seqs = wait_for(
        &pg,
        sealed,
        "the appliance to seal the three actions",
        |s| !s.contains('-'),
    );
    let seq_of = |id: &str| -> u64 {
        seqs.split(' ')
            .find_map(|pair| pair.strip_prefix(&format!("{id}:")))
            .unwrap()
            .parse()
            .unwrap()
    };
    // The acknowledgement reached the appliance's ledger and came back with its incidents.
    wait_for(
        &pg,
        &format!(
            "SELECT acknowledged FROM incidents WHERE appliance_id = 1 AND incident_id = {incident}"
        ),
        "the incident to come back acknowledged",
        |a| a == "t",
    );
    // The page's view: each action sealed as a bundle at a time; the incident acknowledged.
    runtime.block_on(async {
        let detail = admin.get(&path).await;
        assert_eq!(detail.status, 200, "{}", detail.body);
        assert_eq!(detail.body["incident"]["acknowledged"], true);
        for row in detail.body["actions"].as_array().unwrap() {
            assert!(row["sealed_seq"].is_u64(), "{row}");
            assert!(row["sealed_at"].is_string(), "{row}");
            assert!(row["delivered_at"].is_string(), "{row}");
        }
    });
    daemon.stop();

    // On the appliance: three operator-action bundles, by the partner user, from Central Command,
    // each at the sequence number Central Command shows.
    let bundles = central_actions_sealed(&data, "clinic-a");
    assert_eq!(
        bundles.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [seq_of("1"), seq_of("2"), seq_of("3")]
    );
    let (_, ack) = &bundles[0];
    assert_eq!(
        (
            ack["action"].as_str(),
            ack["by"].as_str(),
            ack["details"]["central_action"].as_i64(),
            ack["details"]["incident"].to_string(),
            ack["details"]["target"].as_str(),
        ),
        (
            Some("acknowledge"),
            Some("admin1@1.example"),
            Some(1),
            incident.clone(),
            Some(device.as_str())
        ),
        "{ack}"
    );
    assert!(ack.get("peer").is_none(), "no local caller: {ack}");
    assert_eq!(bundles[1].1["action"], "comment");
    assert_eq!(bundles[1].1["details"]["text"], comment, "sealed verbatim");
    assert_eq!(
        (
            bundles[2].1["details"]["incident"].as_u64(),
            &bundles[2].1["details"]["target"]
        ),
        (Some(999_999), &serde_json::Value::Null),
        "an incident the appliance does not keep: sealed all the same"
    );

    // A crash after the acknowledgement was sealed but before it was recorded, and its report
    // lost: the restarted appliance finds the bundle in its log and reports it, sealing nothing.
    let record = data.join("central-actions.json");
    let mut kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    kept["sealed"].as_object_mut().unwrap().remove("1").unwrap();
    kept["sealing"] = serde_json::json!({"id": 1, "from": seq_of("1")});
    std::fs::write(&record, serde_json::to_vec(&kept).unwrap()).unwrap();
    psql(
        &pg,
        "UPDATE incident_actions SET sealed_seq = NULL, sealed_at = NULL WHERE id IN (1, 2)",
    );
    let daemon = start_daemon(&config);
    wait_for(&pg, sealed, "the appliance to report again", |s| {
        !s.contains('-')
    });
    daemon.stop();
    assert_eq!(psql(&pg, sealed), seqs, "the same bundles");
    assert_eq!(
        central_actions_sealed(&data, "clinic-a").len(),
        3,
        "nothing sealed twice"
    );
}

/// Adds `[agents]` to an appliance's configuration, its release root the file `root`.
fn with_agents(config: &Path, root: &Path) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!(
        "[agents]\nlisten = \"127.0.0.1:{}\"\ncheck_secs = 86400\nrelease_root = \"{}\"\n",
        common::free_port(),
        root.display()
    ));
    std::fs::write(config, text).unwrap();
}

/// `osiris agent release list --json` on the appliance of `config`: (platform, version, sha256,
/// rollout percent) of each release its gateway offers agents from.
fn agent_store(config: &Path) -> Vec<(String, String, String, u64)> {
    let out = Command::new(sibling("osiris"))
        .args(["agent", "release", "list", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["platform"].as_str().unwrap().to_owned(),
                r["version"].as_str().unwrap().to_owned(),
                r["sha256"].as_str().unwrap().to_owned(),
                r["rollout_percent"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The log of the appliance of `config` once it contains `needle`.
fn log_with(config: &Path, needle: &str) -> String {
    wait_until(&format!("`{needle}` in {}", config.display()), || {
        std::fs::read_to_string(config.with_extension("log"))
            .ok()
            .filter(|log| log.contains(needle))
    })
}

fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited 90 s for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Issue 15, fleet: an endpoint-agent release added at Central Command and rolled out to one
/// named practice reaches only that practice's appliance, whose own store verifies it against
/// its own agent root and offers it to its agents; an appliance configured with another vendor's
/// root refuses it, and a binary tampered with at Central Command is refused.
#[test]
fn an_agent_release_rolled_out_to_a_practice_reaches_only_its_appliance_and_is_verified_there() {
    let Some(pg) = PgServer::start(
        "an_agent_release_rolled_out_to_a_practice_reaches_only_its_appliance_and_is_verified_there",
    ) else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT"]);
    // A second practice of the same partner, with its own site (practice 2, site 2).
    ok(&central(
        dir,
        &url,
        &["admin", "practice", "--partner", "1", "Second practice"],
    ));
    ok(&central(
        dir,
        &url,
        &["admin", "site", "--practice", "2", "Branch office"],
    ));
    // And a second site of practice 1 (site 3).
    ok(&central(
        dir,
        &url,
        &["admin", "site", "--practice", "1", "Annex"],
    ));
    let ca = dir.join("server-ca.pem");
    std::fs::write(&ca, &server_ca).unwrap();
    let vendor = AgentVendor::new("vendor");
    let stranger = AgentVendor::new("stranger");
    std::fs::write(dir.join("vendor-root.json"), &vendor.root).unwrap();
    std::fs::write(dir.join("stranger-root.json"), &stranger.root).unwrap();
    let _server = Server::start(dir, &url, port);

    // Appliance A (practice 1) trusts the vendor's root; appliance B (practice 2) another one.
    let a_data = dir.join("a-data");
    let a_config = appliance_config(dir, "clinic-a", &a_data, port, &ca);
    with_agents(&a_config, &dir.join("vendor-root.json"));
    let b_data = dir.join("b-data");
    let b_config = appliance_config(dir, "clinic-b", &b_data, port, &ca);
    with_agents(&b_config, &dir.join("stranger-root.json"));
    // Appliance C (practice 1, site 3) has no [agents] at all.
    let c_data = dir.join("c-data");
    let c_config = appliance_config(dir, "clinic-c", &c_data, port, &ca);
    let _a = start_daemon(&a_config);
    let _b = start_daemon(&b_config);
    let _c = start_daemon(&c_config);
    wait_for(
        &pg,
        "SELECT count(*) FROM enrollments",
        "the three enrollments",
        |n| n == "3",
    );
    for (data, site) in [(&a_data, "1"), (&b_data, "2"), (&c_data, "3")] {
        ok(&central(
            dir,
            &url,
            &["admin", "claim", "--site", site, &claim_code(data)],
        ));
    }

    // The operator keeps the vendor's release; the partner rolls it out to 0 %, then to
    // practice 1 first.
    let (manifest, binary) = vendor.release(dir, "142", "1.4.2", b"osiris-agent 1.4.2 build");
    ok(&central(
        dir,
        &url,
        &[
            "admin",
            "agent-release",
            "add",
            "--manifest",
            &manifest,
            "--binary",
            &binary,
        ],
    ));
    let sha = psql(&pg, "SELECT encode(sha256, 'hex') FROM agent_releases");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut admin = common::user::User::https(port, &server_ca);
    let fleet = |admin: &mut common::user::User| {
        runtime.block_on(async {
            let fleet = admin.get("/v1/fleet").await;
            assert_eq!(fleet.status, 200, "{}", fleet.body);
            fleet
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    (
                        row["practice_id"].as_i64().unwrap(),
                        row["agents_offered"].clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    runtime.block_on(async {
        admin
            .enrol("admin1@1.example", "a long admin password")
            .await;
        let answer = admin
            .post(
                "/v1/agent-releases/1/rollout",
                serde_json::json!({"percent": 0}),
            )
            .await;
        assert_eq!(answer.status, 204, "{}", answer.body);
    });
    let mut rows = fleet(&mut admin);
    rows.sort_by_key(|(practice, _)| *practice);
    assert_eq!(
        rows,
        vec![
            (1, serde_json::json!({})),
            (1, serde_json::json!({})),
            (2, serde_json::json!({}))
        ]
    );
    runtime.block_on(async {
        let answer = admin
            .post(
                "/v1/agent-releases/1/rollout",
                serde_json::json!({"percent": 0, "practices": [1]}),
            )
            .await;
        assert_eq!(answer.status, 204, "{}", answer.body);
    });
    let mut rows = fleet(&mut admin);
    rows.sort_by_key(|(practice, _)| *practice);
    assert_eq!(
        rows,
        vec![
            (1, serde_json::json!({"linux-x86_64": "1.4.2"})),
            (1, serde_json::json!({"linux-x86_64": "1.4.2"})),
            (2, serde_json::json!({}))
        ]
    );

    // A's store holds it, verified, offered to all of A's agents.
    let held = wait_until("appliance A to hold the release", || {
        let store = agent_store(&a_config);
        (!store.is_empty()).then_some(store)
    });
    assert_eq!(
        held,
        vec![(
            "linux-x86_64".to_owned(),
            "1.4.2".to_owned(),
            sha.clone(),
            100
        )]
    );

    // B is not offered it: with B's own link certificate, the offers are empty and the download
    // is refused; with A's, the vendor's bytes come back.
    let identity = |data: &Path| {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.join("central/state.json")).unwrap())
                .unwrap();
        let cert = state["certificate_pem"].as_str().unwrap().to_owned();
        let key = std::fs::read_to_string(data.join("central/tls.key")).unwrap();
        common::https_client(&server_ca, Some((&cert, &key)))
    };
    let base = format!("https://127.0.0.1:{port}");
    runtime.block_on(async {
        let b = identity(&b_data);
        let offers: serde_json::Value = serde_json::from_slice(
            &b.post(format!("{base}/v1/link/agent-releases"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(offers, serde_json::json!({"releases": []}));
        let download = b
            .post(format!("{base}/v1/link/agent-releases/1/binary"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 404);
        assert!(
            download
                .text()
                .await
                .unwrap()
                .contains("agent release 1 is not offered to this appliance")
        );
        let download = identity(&a_data)
            .post(format!("{base}/v1/link/agent-releases/1/binary"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 200);
        assert_eq!(
            download.bytes().await.unwrap().as_ref(),
            b"osiris-agent 1.4.2 build"
        );
    });

    // Offered to everyone: B is offered it and refuses it (another vendor's root), and holds
    // nothing.
    runtime.block_on(async {
        let answer = admin
            .post(
                "/v1/agent-releases/1/rollout",
                serde_json::json!({"percent": 100, "practices": [1]}),
            )
            .await;
        assert_eq!(answer.status, 204, "{}", answer.body);
    });
    let b_refused = "the partner's agent release linux-x86_64 1.4.2 is refused";
    let b_log = log_with(&b_config, b_refused);
    assert!(
        b_log.contains(
            "the document of linux-x86_64 1.4.2 does not verify under this appliance's agent root"
        ),
        "{b_log}"
    );
    assert_eq!(agent_store(&b_config), vec![]);

    // A Central Command that swaps a release's binary: the vendor's 1.5.0 document, another
    // binary of the same length. A refuses it and keeps 1.4.2.
    let (manifest, binary) = vendor.release(dir, "150", "1.5.0", b"osiris-agent 1.5.0 build");
    ok(&central(
        dir,
        &url,
        &[
            "admin",
            "agent-release",
            "add",
            "--manifest",
            &manifest,
            "--binary",
            &binary,
        ],
    ));
    psql(
        &pg,
        "UPDATE agent_releases SET body = convert_to('evil!-agent 1.5.0 build!', 'UTF8') WHERE version = '1.5.0'",
    );
    runtime.block_on(async {
        let answer = admin
            .post(
                "/v1/agent-releases/2/rollout",
                serde_json::json!({"percent": 100}),
            )
            .await;
        assert_eq!(answer.status, 204, "{}", answer.body);
    });
    let a_refused = "the partner's agent release linux-x86_64 1.5.0 is refused";
    let a_log = log_with(&a_config, a_refused);
    assert!(
        a_log.contains("linux-x86_64 1.5.0 from Central Command")
            && a_log.contains("does not match its manifest"),
        "{a_log}"
    );
    assert_eq!(
        agent_store(&a_config),
        vec![("linux-x86_64".to_owned(), "1.4.2".to_owned(), sha, 100)]
    );

    // C, without agent releases, was offered both and said once that it ignores them.
    let c_log = log_with(
        &c_config,
        "agent release linux-x86_64 1.5.0 offered by Central Command is not taken",
    );
    assert!(
        c_log.contains("agent release linux-x86_64 1.4.2 offered by Central Command is not taken"),
        "{c_log}"
    );
    assert_eq!(
        c_log
            .matches("Central Command offers agent releases; they are ignored")
            .count(),
        1,
        "{c_log}"
    );
    // Each refusal was judged once, not again at every later step (B's many steps since).
    let read = |config: &Path| std::fs::read_to_string(config.with_extension("log")).unwrap();
    assert_eq!(read(&b_config).matches(b_refused).count(), 1);
    assert_eq!(read(&a_config).matches(a_refused).count(), 1);
}

/// Issue 19, item 7: the real `osirisd` makes last month's compliance packet at start (its log
/// begins then), and once claimed delivers it over the link; Central Command checks it against
/// the sealed bundle, keeps it once, and lists and serves it to the users of that partner only:
/// another partner's administrator sees no packet and gets 404 for its files.
#[test]
fn the_monthly_packet_reaches_central_command_and_only_its_partner_sees_it() {
    let Some(pg) =
        PgServer::start("the_monthly_packet_reaches_central_command_and_only_its_partner_sees_it")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT", "Other MSP"]);
    let ca = dir.join("server-ca.pem");
    std::fs::write(&ca, &server_ca).unwrap();
    let _server = Server::start(dir, &url, port);
    let data = dir.join("a-data");
    // Last month's evidence, so the appliance's log begins before this month.
    let now = time::OffsetDateTime::now_utc();
    let at = now
        .date()
        .replace_day(1)
        .unwrap()
        .previous_day()
        .unwrap()
        .replace_day(3)
        .unwrap()
        .with_hms(12, 0, 0)
        .unwrap()
        .assume_utc();
    let period = format!("{:04}-{:02}", at.year(), u8::from(at.month()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store::Store::open(&store::StoreConfig {
            data_dir: data.clone(),
            site: "clinic-a".into(),
        })
        .await
        .unwrap();
        store
            .append(evidence::BundleDraft {
                site: "clinic-a".into(),
                kind: "attestation".into(),
                catalog: "test".into(),
                time: at,
                body: serde_json::json!({
                    "control": "HIPAA:164.308(a)(1)(ii)(A)", "statement": "Risk analysis reviewed",
                    "by": "Office manager", "expires": "2099-12-31", "document": null,
                }),
            })
            .await
            .unwrap();
        store.create_checkpoint().await.unwrap();
        store.close().await;
    });
    let config = appliance_config(dir, "clinic-a", &data, port, &ca);
    let daemon = start_daemon(&config);
    wait_for(
        &pg,
        "SELECT count(*) FROM enrollments",
        "the enrollment",
        |n| n == "1",
    );
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", &claim_code(&data)],
    ));
    wait_for(
        &pg,
        "SELECT count(*) FROM packets",
        "the monthly packet at Central Command",
        |n| n == "1",
    );
    // Kept once, even as the appliance keeps stepping.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(psql(&pg, "SELECT count(*) FROM packets"), "1");
    assert_eq!(
        psql(&pg, "SELECT count(*) FROM packet_files WHERE packet_id = 1"),
        "26"
    );
    daemon.stop();

    let pdf_name = format!("hipaa-{period}.pdf");
    let local_pdf = std::fs::read(data.join("packets").join(&period).join(&pdf_name)).unwrap();
    let mut admin = common::user::User::https(port, &server_ca);
    let mut other = common::user::User::https(port, &server_ca);
    runtime.block_on(async {
        admin
            .enrol("admin1@1.example", "a long admin password")
            .await;
        other
            .enrol("admin2@2.example", "a long admin password")
            .await;
        let listed = admin.get("/v1/packets").await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let rows = listed.body.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{}", listed.body);
        assert_eq!(rows[0]["period"], period.as_str());
        assert_eq!(rows[0]["appliance_id"], 1);
        let files = rows[0]["files"].as_array().unwrap();
        assert_eq!(files.len(), 26);
        let listed_sha = files
            .iter()
            .find(|f| f["name"] == pdf_name.as_str())
            .unwrap()["sha256"]
            .clone();
        let file = admin.get(&format!("/v1/packets/1/files/{pdf_name}")).await;
        assert_eq!(file.status, 200);
        assert_eq!(file.raw, local_pdf, "the appliance's own bytes");
        assert_eq!(
            listed_sha,
            hex::encode(sha2::Sha256::digest(&file.raw)).as_str()
        );
        // Another partner: nothing listed, nothing served (404, as for an unknown id).
        let listed = other.get("/v1/packets").await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        assert_eq!(listed.body, serde_json::json!([]));
        let file = other.get(&format!("/v1/packets/1/files/{pdf_name}")).await;
        assert_eq!(file.status, 404, "{}", file.body);
        let missing = admin.get("/v1/packets/1/files/..%2Fbundles.jsonl").await;
        assert_eq!(missing.status, 404, "{}", missing.body);
        // The dashboard's evidence page links its reports; the other partner's does not.
        let link = format!("/v1/packets/1/files/{pdf_name}");
        let page = admin.get("/evidence").await;
        assert_eq!(page.status, 200);
        let page = String::from_utf8_lossy(&page.raw).into_owned();
        assert!(page.contains(&link) && page.contains(&period), "{page}");
        let page = other.get("/evidence").await;
        let page = String::from_utf8_lossy(&page.raw).into_owned();
        assert!(!page.contains("/v1/packets/"), "{page}");
        assert!(page.contains("No monthly packet yet"), "{page}");
    });
    assert_eq!(
        psql(
            &pg,
            "SELECT count(*) FROM audit_log WHERE action = 'packet.download' AND partner_id = 1"
        ),
        "1"
    );
}
