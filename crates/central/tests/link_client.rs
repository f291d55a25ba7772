//! The appliance's side of the link (`link-client`) against the real `osiris-central serve`:
//! two appliances claimed into two partners, both logs cosigned, state that survives a restart,
//! catching up in order after Central Command was away, and a rewritten log refused once per
//! checkpoint without wedging the link.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use evidence::{Checkpoint, WitnessVerifier};
use link_client::{LinkError, LinkStatus};
use test_support::postgres::PgServer;

mod common;
use common::appliance::{Box_, device, heal_entry, incident, link};
use common::{Server, central, channel_sql, https_client, ok, setup, signed_manifest};

#[test]
fn two_appliances_of_two_partners_are_claimed_witnessed_and_catch_up_after_an_outage() {
    let Some(pg) = PgServer::start(
        "two_appliances_of_two_partners_are_claimed_witnessed_and_catch_up_after_an_outage",
    ) else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, witness_key) = setup(dir, &url, &["Acme IT", "Beta MSP"]);
    let witness: WitnessVerifier = witness_key.parse().unwrap();
    let base = format!("https://127.0.0.1:{port}/");
    let server = Server::start(dir, &url, port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let a = Box_::new(1, "AAAA-BBBB-CCCC");
    let b = Box_::new(2, "DDDD-EEEE-FFFF");
    let a_dir = dir.join("a-link");
    let b_dir = dir.join("b-link");
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        let mut lb = link(&base, &b_dir, &server_ca);
        // Before anyone is claimed: both wait.
        assert!(matches!(
            la.step(&a).await.unwrap(),
            LinkStatus::WaitingForClaim { .. }
        ));
        assert!(matches!(
            lb.step(&b).await.unwrap(),
            LinkStatus::WaitingForClaim { .. }
        ));
        assert!(matches!(
            la.step(&a).await.unwrap(),
            LinkStatus::WaitingForClaim { .. }
        ));
        // The link key is private to the appliance.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(a_dir.join("tls.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    });
    // Each partner claims its own appliance (site 1 is Acme's, site 2 Beta's). A partner cannot
    // claim into another partner's site: the code of B typed for site 1 binds B to Acme — so the
    // codes are what decides, and each is only on its own console.
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", "AAAA-BBBB-CCCC"],
    ));
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "2", "dddd eeee ffff"],
    ));

    runtime.block_on(async {
        // State survives a restart of the appliance's daemon: reopen from the directory.
        let mut la = link(&base, &a_dir, &server_ca);
        let mut lb = link(&base, &b_dir, &server_ca);
        assert!(matches!(
            la.step(&a).await.unwrap(),
            LinkStatus::Linked { .. }
        ));
        assert!(matches!(
            lb.step(&b).await.unwrap(),
            LinkStatus::Linked { .. }
        ));
        assert_eq!(la.witness_key(), Some(witness_key.as_str()));

        a.append(10, "a");
        b.append(3, "b");
        assert_eq!(
            la.step(&a).await.unwrap(),
            LinkStatus::Linked {
                appliance_id: 1,
                witness_size: 10
            }
        );
        assert_eq!(
            lb.step(&b).await.unwrap(),
            LinkStatus::Linked {
                appliance_id: 2,
                witness_size: 3
            }
        );
        // Nothing new: nothing pushed (the empty device snapshot went once, with the checkpoint).
        let seq_before = std::fs::read_to_string(a_dir.join("state.json")).unwrap();
        la.step(&a).await.unwrap();
        assert_eq!(a.cosignatures.lock().unwrap().len(), 1);
        assert_eq!(
            std::fs::read_to_string(a_dir.join("state.json")).unwrap(),
            seq_before
        );
        // The dashboard's view of A's devices: names, verdicts and failing check ids only.
        *a.devices.lock().unwrap() = vec![
            device(
                "FRONTDESK-01",
                "drifted",
                &["WIN-BITLOCKER-001", "WIN-SCREENLOCK-001"],
            ),
            device("DR-OFFICE-02", "compliant", &[]),
        ];
        la.step(&a).await.unwrap();
        // A hostile name is refused whole; the last good snapshot stays.
        *a.devices.lock().unwrap() = vec![device("EVIL\u{1b}[2J", "compliant", &[])];
        let err = la.step(&a).await.unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
        *a.devices.lock().unwrap() = vec![
            device(
                "FRONTDESK-01",
                "drifted",
                &["WIN-BITLOCKER-001", "WIN-SCREENLOCK-001"],
            ),
            device("DR-OFFICE-02", "compliant", &[]),
        ];
        a.append(5, "a2");
        la.step(&a).await.unwrap();
        for (size, line) in a.cosignatures.lock().unwrap().iter() {
            assert!(*size == 10 || *size == 15);
            // Each kept cosignature is the witness's over a checkpoint of A's own log.
            let tree = a.tree.lock().unwrap();
            let note = Checkpoint {
                origin: a.key.origin().to_owned(),
                size: *size,
                root: tree.root_at(*size).unwrap(),
            }
            .sign(&a.key);
            witness.verify(&format!("{note}{line}")).unwrap();
        }
    });

    // Central Command goes away; A keeps logging and cannot push; it comes back and A catches up
    // with one push of its newest checkpoint, proven consistent with the last witnessed one.
    drop(server);
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        a.append(7, "offline");
        let err = la.step(&a).await.unwrap_err();
        assert!(matches!(err, LinkError::Unreachable { .. }), "{err}");
        a.append(3, "offline2");
        assert!(la.step(&a).await.is_err());
    });
    let _server = Server::start(dir, &url, port);
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        assert_eq!(
            la.step(&a).await.unwrap(),
            LinkStatus::Linked {
                appliance_id: 1,
                witness_size: 25
            }
        );

        // A's log is rewritten (same key, other history, longer): refused as a fork, alerted,
        // not offered again; the link keeps working for the next checkpoint.
        let rewritten = Box_::new(1, "AAAA-BBBB-CCCC");
        *rewritten.devices.lock().unwrap() = a.devices.lock().unwrap().clone();
        rewritten.append(30, "rewritten");
        let err = la.step(&rewritten).await.unwrap_err();
        assert!(err.to_string().contains("fork"), "{err}");
        let err = la.step(&rewritten).await;
        assert!(
            err.is_ok(),
            "the refused checkpoint was pushed again: {err:?}"
        );
    });
    let alerts = pg.client(
        "psql",
        &[
            "-d",
            "central",
            "-At",
            "-c",
            "SELECT partner_id || ' ' || severity FROM alerts",
        ],
    );
    assert_eq!(
        common::text(&alerts.stdout).trim(),
        "1 critical",
        "only A's partner is alerted"
    );
    let sql = |query: &str| common::psql(&pg, query);
    assert_eq!(
        sql(
            "SELECT appliance_id || ' ' || name || ' ' || status || ' ' || failing::text FROM devices ORDER BY appliance_id, name"
        ),
        "1 DR-OFFICE-02 compliant []\n1 FRONTDESK-01 drifted [\"WIN-BITLOCKER-001\", \"WIN-SCREENLOCK-001\"]"
    );
    assert_eq!(
        sql(
            "SELECT DISTINCT appliance_id || ' ' || framework || ' ' || permille FROM compliance ORDER BY 1"
        ),
        "1 HIPAA 875\n2 HIPAA 875"
    );
    // The pages' view: one value per appliance and day, the partner's sum moved only by changes
    // (A's snapshot went twice that day), the counts the overview reads, each device's history.
    assert_eq!(
        sql(
            "SELECT appliance_id || ' ' || day || ' ' || permille FROM compliance_daily ORDER BY 1"
        ),
        "1 2025-11-24 875\n2 2025-11-24 875"
    );
    assert_eq!(
        sql(
            "SELECT partner_id || ' ' || total || ' ' || reports FROM compliance_daily_partner ORDER BY 1"
        ),
        "1 875 1\n2 875 1"
    );
    assert_eq!(
        sql(
            "SELECT devices_total || ' ' || devices_failing || ' ' || workstations_known || ' ' || workstations_checked FROM appliances WHERE id = 1"
        ),
        "2 1 2 2"
    );
    assert_eq!(
        sql(
            "SELECT name || ' ' || status FROM device_history WHERE appliance_id = 1 ORDER BY name"
        ),
        "DR-OFFICE-02 compliant\nFRONTDESK-01 drifted"
    );
    let heads = pg.client(
        "psql",
        &[
            "-d",
            "central",
            "-At",
            "-c",
            "SELECT appliance_id || ':' || size FROM witness_heads ORDER BY 1",
        ],
    );
    assert_eq!(common::text(&heads.stdout).trim(), "1:25\n2:3");
}

/// Incidents, the healing log and the update state reach Central Command: each incident once per
/// change, the healing log in order in batches, a refused item retried without loss, an outage
/// caught up; hostile text stays text.
#[test]
fn incidents_healing_and_update_state_arrive_in_order_once_and_as_sent() {
    let Some(pg) =
        PgServer::start("incidents_healing_and_update_state_arrive_in_order_once_and_as_sent")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT"]);
    let base = format!("https://127.0.0.1:{port}/");
    let server = Server::start(dir, &url, port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sql = |query: &str| common::psql(&pg, query);
    let a = Box_::new(1, "AAAA-BBBB-CCCC");
    let a_dir = dir.join("a-link");
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        la.step(&a).await.unwrap();
    });
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", "AAAA-BBBB-CCCC"],
    ));
    let hostile = "<script>alert(1)</script>'; DROP TABLE incidents; --";
    *a.incidents.lock().unwrap() = vec![
        incident(1, "FRONTDESK-01", "open"),
        incident(2, hostile, "escalated"),
    ];
    *a.healing.lock().unwrap() = (1..=1200)
        .map(|id| heal_entry(id, if id % 3 == 0 { "not_fixed" } else { "fixed" }))
        .collect();
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        // The first step collects the certificate, the next pushes.
        assert!(matches!(
            la.step(&a).await.unwrap(),
            LinkStatus::Linked { .. }
        ));
        assert_eq!(sql("SELECT count(*) FROM incidents"), "0");
        la.step(&a).await.unwrap();
    });
    assert_eq!(
        sql(
            "SELECT incident_id || ' ' || device || ' ' || phase || ' ' || transitions::text FROM incidents ORDER BY incident_id"
        ),
        format!(
            "1 FRONTDESK-01 open []\n2 {hostile} escalated [{{\"at\": 1764000062, \"to\": \"escalated\", \"from\": \"open\"}}]"
        )
    );
    // 1,200 entries in three pushes of at most 500, every one once, in order.
    assert_eq!(
        sql(
            "SELECT count(*) || ' ' || min(entry_id) || ' ' || max(entry_id) || ' ' || count(*) FILTER (WHERE result = 'not_fixed') FROM healing_log"
        ),
        "1200 1 1200 400"
    );
    assert_eq!(
        sql("SELECT software_version || ' ' || update_state FROM appliances"),
        "0.4.0 idle"
    );
    // Pushes so far: checkpoint none (empty log), devices 1, incidents 1, healing 3, update 1.
    assert_eq!(sql("SELECT next_seq FROM appliances"), "7");

    // One incident changes: only it is pushed again (one push), the other is untouched.
    a.incidents.lock().unwrap()[0] = {
        let mut resolved = incident(1, "FRONTDESK-01", "resolved");
        resolved.updated_at += 600;
        resolved
    };
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        la.step(&a).await.unwrap();
        // Nothing changed since: nothing is pushed.
        la.step(&a).await.unwrap();
    });
    assert_eq!(sql("SELECT next_seq FROM appliances"), "8");
    assert_eq!(
        sql("SELECT incident_id || ' ' || phase FROM incidents ORDER BY 1"),
        "1 resolved\n2 escalated"
    );
    // The appliance forgets a closed incident: Central Command keeps its history.
    a.incidents.lock().unwrap().remove(0);
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        la.step(&a).await.unwrap();
    });
    assert_eq!(sql("SELECT count(*) FROM incidents"), "2");

    // A malformed entry is refused whole with a clear reason; nothing after it is lost: once
    // the appliance sends it correctly, it and the rest arrive in order.
    a.healing.lock().unwrap().push(link_proto::HealEntry {
        tier: "L9".into(),
        ..heal_entry(1201, "fixed")
    });
    a.healing.lock().unwrap().push(heal_entry(1202, "fixed"));
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        let err = la.step(&a).await.unwrap_err();
        assert!(err.to_string().contains("unknown tier `L9`"), "{err}");
    });
    assert_eq!(sql("SELECT max(entry_id) FROM healing_log"), "1200");
    a.healing.lock().unwrap()[1200].tier = "L1".into();

    // Central Command is away meanwhile; the appliance goes on healing and updating.
    drop(server);
    a.healing
        .lock()
        .unwrap()
        .extend((1203..=1210).map(|id| heal_entry(id, "fixed")));
    *a.update.lock().unwrap() = link_proto::UpdateSummary {
        current: "0.4.0".into(),
        available: Some("0.5.0".into()),
        state: "rolled_back".into(),
        detail: Some("went back to the previous version: health check failed".into()),
        ots: None,
    };
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        let err = la.step(&a).await.unwrap_err();
        assert!(matches!(err, LinkError::Unreachable { .. }), "{err}");
    });
    let _server = Server::start(dir, &url, port);
    runtime.block_on(async {
        let mut la = link(&base, &a_dir, &server_ca);
        la.step(&a).await.unwrap();
    });
    assert_eq!(
        sql("SELECT count(*) || ' ' || max(entry_id) FROM healing_log"),
        "1210 1210"
    );
    assert_eq!(
        sql(
            "SELECT update_state || ' ' || update_available || ' ' || update_detail FROM appliances"
        ),
        "rolled_back 0.5.0 went back to the previous version: health check failed"
    );
    // The table the hostile name would have dropped is there, and the name is stored as sent.
    assert_eq!(
        sql(&format!(
            "SELECT count(*) FROM incidents WHERE device = '{}'",
            hostile.replace('\'', "''")
        )),
        "1"
    );
}

/// Fleet: Central Command keeps only manifests the vendor signed; a partner's rollout offers one
/// to the appliances it includes (named practices first, then a share); the appliance hands the
/// vendor's bytes to its updater unchanged (they still verify under the vendor key); withdrawing
/// the rollout withdraws the offer.
#[test]
fn a_rollout_hands_the_vendors_manifest_to_the_appliances_it_includes() {
    let Some(pg) =
        PgServer::start("a_rollout_hands_the_vendors_manifest_to_the_appliances_it_includes")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT"]);
    let base = format!("https://127.0.0.1:{port}/");
    let _server = Server::start(dir, &url, port);
    let sql = |query: &str| common::psql(&pg, query);
    let (manifest, vendor) = signed_manifest(7, "1.2.0", 3);
    let (forged, _) = signed_manifest(8, "1.2.0", 4);
    std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
    std::fs::write(dir.join("forged.json"), &forged).unwrap();

    // Without the vendor key configured, nothing can be added; with it, a manifest signed by
    // another key is refused and the vendor's is kept.
    let out = central(
        dir,
        &url,
        &["admin", "release", "add", "--manifest", "manifest.json"],
    );
    assert_eq!(out.status.code(), Some(78), "{}", common::text(&out.stderr));
    let mut config = std::fs::read_to_string(dir.join("central.toml")).unwrap();
    config.push_str(&format!("\n[fleet]\nvendor_key = \"{vendor}\"\n"));
    std::fs::write(dir.join("central.toml"), config).unwrap();
    let out = central(
        dir,
        &url,
        &["admin", "release", "add", "--manifest", "forged.json"],
    );
    assert!(!out.status.success());
    assert!(
        common::text(&out.stderr).contains("the manifest is refused"),
        "{}",
        common::text(&out.stderr)
    );
    ok(&central(
        dir,
        &url,
        &["admin", "release", "add", "--manifest", "manifest.json"],
    ));
    assert_eq!(
        sql("SELECT version || ' ' || counter FROM releases"),
        "1.2.0 3"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = Box_::new(1, "AAAA-BBBB-CCCC");
    let a_dir = dir.join("a-link");
    runtime.block_on(async {
        link(&base, &a_dir, &server_ca).step(&a).await.unwrap();
    });
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", "AAAA-BBBB-CCCC"],
    ));
    let step = |a: &Box_| {
        runtime.block_on(async {
            link(&base, &a_dir, &server_ca).step(a).await.unwrap();
        });
    };
    step(&a);
    step(&a);
    // No rollout yet: nothing offered.
    assert_eq!(*a.offered.lock().unwrap(), None);

    // The partner offers 1.2.0 to its practice first (share 0).
    sql(
        "INSERT INTO rollouts (partner_id, release_id, percent, practices, updated_by) SELECT 1, id, 0, '{1}', 'test' FROM releases",
    );
    step(&a);
    let offered = a.offered.lock().unwrap().clone().expect("an offer");
    assert_eq!(offered.0, "1.2.0");
    assert_eq!(offered.1, manifest, "the vendor's bytes, unchanged");
    update_manifest::SignedManifest::from_json(&offered.1)
        .unwrap()
        .verify(&vendor)
        .expect("still the vendor's signature");

    // Withdrawn: the appliance is told, and its updater loses the offer.
    sql("DELETE FROM rollouts");
    step(&a);
    assert_eq!(*a.offered.lock().unwrap(), None);
    // Offered to everyone (share 100): offered again.
    sql(
        "INSERT INTO rollouts (partner_id, release_id, percent, updated_by) SELECT 1, id, 100, 'test' FROM releases",
    );
    step(&a);
    assert_eq!(
        a.offered.lock().unwrap().as_ref().map(|(v, _)| v.clone()),
        Some("1.2.0".to_owned())
    );
}

/// Escalation channels set once at Central Command reach the partner's appliance with their
/// secrets sealed to that appliance's own key; an unchanged set is not handed over again; a
/// removed channel is removed.
#[test]
fn partner_channels_reach_the_appliance_sealed_to_its_key() {
    let Some(pg) = PgServer::start("partner_channels_reach_the_appliance_sealed_to_its_key") else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT", "Beta MSP"]);
    let base = format!("https://127.0.0.1:{port}/");
    let _server = Server::start(dir, &url, port);
    let sql = |query: &str| common::psql(&pg, query);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = Box_::new(1, "AAAA-BBBB-CCCC");
    let a_dir = dir.join("a-link");
    let step = |a: &Box_| {
        runtime.block_on(async {
            link(&base, &a_dir, &server_ca).step(a).await.unwrap();
        });
    };
    step(&a);
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", "AAAA-BBBB-CCCC"],
    ));
    step(&a);
    step(&a);
    assert_eq!(
        *a.channel_changes.lock().unwrap(),
        0,
        "no channels yet, nothing handed over"
    );

    let secret = "https://hooks.slack.example/services/T0/B0/acme-oncall-secret";
    sql(&channel_sql(dir, 1, "oncall", "slack", secret));
    sql(&channel_sql(
        dir,
        2,
        "beta-only",
        "pagerduty",
        "beta-routing-key",
    ));
    // An e-mail channel: its settings in the clear, its SMTP password sealed.
    sql(&channel_sql(dir, 1, "mail", "pagerduty", "smtp-password"));
    sql(
        r#"UPDATE partner_channels SET kind = 'email', email = '{"server": "smtp.acme.example", "port": 587, "security": "starttls", "from": "osiris@acme.example", "to": ["oncall@acme.example"], "username": "osiris@acme.example"}' WHERE name = 'mail'"#,
    );
    step(&a);
    {
        let channels = a.channels.lock().unwrap();
        assert_eq!(
            channels.len(),
            2,
            "only its own partner's channels: {channels:?}"
        );
        assert_eq!(
            (
                channels[1].name.as_str(),
                channels[1].kind.as_str(),
                channels[1].secret.as_str()
            ),
            ("oncall", "slack", secret)
        );
        assert_eq!(
            (
                channels[0].kind.as_str(),
                channels[0].secret.as_str(),
                channels[0].email.as_ref().map(|e| e.server.as_str())
            ),
            ("email", "smtp-password", Some("smtp.acme.example"))
        );
    }
    // Central Command kept the key the secrets were sealed to; nothing in the database or the
    // appliance's link state holds the secret in the clear.
    assert_eq!(
        sql("SELECT length(sealing_key) FROM appliances WHERE id = 1"),
        "44"
    );
    assert_eq!(
        sql(
            "SELECT count(*) FROM partner_channels WHERE secret_sealed::text LIKE '%oncall-secret%'"
        ),
        "0"
    );
    let state = std::fs::read_to_string(a_dir.join("state.json")).unwrap();
    assert!(!state.contains("oncall-secret"), "{state}");
    // Unchanged: not handed over again.
    step(&a);
    assert_eq!(*a.channel_changes.lock().unwrap(), 1);
    // Removed at Central Command: removed on the appliance.
    sql("DELETE FROM partner_channels WHERE partner_id = 1");
    step(&a);
    assert!(a.channels.lock().unwrap().is_empty());
    assert_eq!(*a.channel_changes.lock().unwrap(), 2);
}

/// What partner users did about incidents reaches the incident's appliance, and only that one:
/// handed out oldest first until the appliance reports them sealed, then not again (a lost
/// report hands them out again, and the appliance answers from its record); an appliance cannot
/// confirm another appliance's action, a report that is not one is refused whole, and a second
/// report of an action does not replace the first.
#[test]
fn operator_actions_reach_their_appliance_and_come_back_sealed() {
    let Some(pg) = PgServer::start("operator_actions_reach_their_appliance_and_come_back_sealed")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT", "Beta MSP"]);
    let base = format!("https://127.0.0.1:{port}/");
    let _server = Server::start(dir, &url, port);
    let sql = |query: &str| common::psql(&pg, query);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = Box_::new(1, "AAAA-BBBB-CCCC");
    let b = Box_::new(2, "DDDD-EEEE-FFFF");
    let (a_dir, b_dir) = (dir.join("a-link"), dir.join("b-link"));
    let step = |appliance: &Box_, link_dir: &std::path::Path| {
        runtime.block_on(async {
            link(&base, link_dir, &server_ca)
                .step(appliance)
                .await
                .unwrap();
        });
    };
    step(&a, &a_dir);
    step(&b, &b_dir);
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "1", "AAAA-BBBB-CCCC"],
    ));
    ok(&central(
        dir,
        &url,
        &["admin", "claim", "--site", "2", "DDDD-EEEE-FFFF"],
    ));
    *a.incidents.lock().unwrap() = vec![incident(1, "FRONTDESK-01", "escalated")];
    *b.incidents.lock().unwrap() = vec![incident(1, "BETA-PC", "open")];
    for _ in 0..2 {
        step(&a, &a_dir);
        step(&b, &b_dir);
    }
    assert_eq!(sql("SELECT count(*) FROM incidents"), "2");
    assert!(a.actions_seen.lock().unwrap().is_empty());

    // A's partner acknowledges, assigns and comments (markup and a line break, kept verbatim);
    // B's partner acknowledges its own appliance's incident 1 (the same id, another appliance).
    let comment = "<script>alert(1)</script>\nsecond line";
    sql(&format!(
        "INSERT INTO incident_actions (partner_id, appliance_id, incident_id, opened_at, kind, by_user, assignee_user, text) VALUES
         (1, 1, 1, to_timestamp(1764000001), 'acknowledge', 1, NULL, NULL),
         (1, 1, 1, to_timestamp(1764000001), 'comment', 1, NULL, E'{}'),
         (1, 1, 1, to_timestamp(1764000001), 'assign', 1, 1, NULL),
         (2, 2, 1, to_timestamp(1764000001), 'acknowledge', 2, NULL, NULL)",
        comment.replace('\n', "\\n")
    ));
    // A claims to have sealed B's action too: the link reports only what it was handed.
    *a.forged_report.lock().unwrap() = Some(link_proto::SealedAction {
        id: 4,
        seq: 9,
        at: 1_764_000_500,
    });
    step(&a, &a_dir);
    {
        let seen = a.actions_seen.lock().unwrap();
        let kinds: Vec<(i64, &str, &str)> = seen
            .iter()
            .map(|x| (x.id, x.kind.as_str(), x.by.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (1, "acknowledge", "admin1@1.example"),
                (2, "comment", "admin1@1.example"),
                (3, "assign", "admin1@1.example")
            ]
        );
        assert_eq!((seen[0].incident, seen[0].opened_at), (1, 1_764_000_001));
        assert_eq!(seen[1].text.as_deref(), Some(comment));
        assert_eq!(seen[2].assignee.as_deref(), Some("admin1@1.example"));
    }
    let sealed = "SELECT id || ' ' || coalesce(sealed_seq::text, '-') || ' ' || coalesce(extract(epoch from sealed_at)::bigint::text, '-') || ' ' || (delivered_at IS NOT NULL) FROM incident_actions ORDER BY id";
    assert_eq!(
        sql(sealed),
        "1 100 1764000500 true\n2 101 1764000500 true\n3 102 1764000500 true\n4 - - false",
        "B's action is neither handed to A nor confirmed by A"
    );
    // Sealed: not handed out again.
    step(&a, &a_dir);
    assert_eq!(a.actions_seen.lock().unwrap().len(), 3);
    // B gets its own.
    step(&b, &b_dir);
    assert_eq!(
        b.actions_seen
            .lock()
            .unwrap()
            .iter()
            .map(|x| (x.id, x.by.clone()))
            .collect::<Vec<_>>(),
        [(4, "admin2@2.example".to_owned())]
    );
    assert!(sql(sealed).ends_with("4 100 1764000500 true"));

    // A report lost on the way: handed out again, answered from the appliance's record with the
    // same bundle.
    sql("UPDATE incident_actions SET sealed_seq = NULL, sealed_at = NULL WHERE id = 2");
    step(&a, &a_dir);
    assert_eq!(a.actions_seen.lock().unwrap().len(), 4);
    assert!(sql(sealed).contains("2 101 1764000500 true"));

    // Straight at the server with A's own certificate.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a_dir.join("state.json")).unwrap()).unwrap();
    let cert = state["certificate_pem"].as_str().unwrap().to_owned();
    let key = std::fs::read_to_string(a_dir.join("tls.key")).unwrap();
    let as_a = https_client(&server_ca, Some((&cert, &key)));
    let anonymous = https_client(&server_ca, None);
    runtime.block_on(async {
        let post = |client: &reqwest::Client, path: &str, body: serde_json::Value| {
            let request = client
                .post(format!("https://127.0.0.1:{port}{path}"))
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap())
                .send();
            async move {
                let response = request.await.unwrap();
                let status = response.status().as_u16();
                let bytes = response.bytes().await.unwrap();
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                (
                    status,
                    body["error"].as_str().unwrap_or_default().to_owned(),
                    body,
                )
            }
        };
        let report = |entries: serde_json::Value| serde_json::json!({"sealed": entries});
        for (body, status, words) in [
            (
                report(serde_json::json!([{"id": 4, "seq": 9, "at": 1_764_000_500}])),
                404,
                "no operator action 4 for this appliance",
            ),
            (
                report(
                    serde_json::json!([{"id": 1, "seq": 100, "at": 1_764_000_500},
                                          {"id": 1, "seq": 100, "at": 1_764_000_500}]),
                ),
                400,
                "sealed action 1 is listed twice",
            ),
            (
                report(serde_json::json!([{"id": 1, "seq": u64::MAX, "at": 1_764_000_500}])),
                400,
                "sealed action 1: its id, sequence number or time is out of range",
            ),
            (
                report(
                    serde_json::json!([{"id": 1, "seq": 100, "at": 1_764_000_500, "patient": "x"}]),
                ),
                422,
                "",
            ),
        ] {
            let (got, error, _) =
                post(&as_a, link_proto::path::OPERATOR_ACTIONS_SEALED, body).await;
            assert_eq!((got, error.as_str()), (status, words));
        }
        // A second report of an action keeps the first.
        let (got, _, body) = post(
            &as_a,
            link_proto::path::OPERATOR_ACTIONS_SEALED,
            report(serde_json::json!([{"id": 1, "seq": 555, "at": 1_764_000_900}])),
        )
        .await;
        assert_eq!((got, body["recorded"].as_u64()), (200, Some(0)));
        // Without the appliance's certificate nothing is handed out or taken.
        let (got, _, _) = post(
            &anonymous,
            link_proto::path::OPERATOR_ACTIONS,
            serde_json::json!({}),
        )
        .await;
        assert_eq!(got, 401);
        let (got, _, body) = post(
            &as_a,
            link_proto::path::OPERATOR_ACTIONS,
            serde_json::json!({}),
        )
        .await;
        assert_eq!(
            (got, body["actions"].as_array().map(Vec::len)),
            (200, Some(0))
        );
    });
    assert_eq!(
        sql(sealed),
        "1 100 1764000500 true\n2 101 1764000500 true\n3 102 1764000500 true\n4 100 1764000500 true"
    );
}

/// A packet in `dir` of two files, its `packet` bundle sealed by `key` (as the appliance's log
/// would), naming their SHA-256 and sizes as they are now.
fn sealed_packet(key: &evidence::ApplianceKey, dir: &std::path::Path) -> link_client::LocalPacket {
    use sha2::Digest as _;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("hipaa-2026-11.csv"),
        "framework,control\nHIPAA,164.308\n",
    )
    .unwrap();
    let csv = std::fs::read(dir.join("hipaa-2026-11.csv")).unwrap();
    let manifest = format!(
        "{}  hipaa-2026-11.csv\n",
        hex::encode(sha2::Sha256::digest(&csv))
    );
    std::fs::write(dir.join("MANIFEST.sha256"), &manifest).unwrap();
    let files: Vec<serde_json::Value> = [("hipaa-2026-11.csv", csv), ("MANIFEST.sha256", manifest.into_bytes())]
        .iter()
        .map(|(name, bytes)| serde_json::json!({"name": name, "sha256": hex::encode(sha2::Sha256::digest(bytes)), "size": bytes.len()}))
        .collect();
    let line = evidence::LogWriter::new(key.clone())
        .seal(&evidence::BundleDraft {
            site: "clinic".into(),
            kind: "packet".into(),
            catalog: "test".into(),
            time: time::macros::datetime!(2026-12-01 00:00:05 UTC),
            body: serde_json::json!({"period": "2026-11", "generated_at": "2026-12-01T00:00:04Z",
                "directory": "packets/2026-11", "evidence": true, "files": files}),
        })
        .unwrap()
        .line;
    link_client::LocalPacket {
        period: "2026-11".into(),
        dir: dir.to_owned(),
        bundle_line: line,
        files: vec!["hipaa-2026-11.csv".into(), "MANIFEST.sha256".into()],
    }
}

/// Issue 19: a monthly packet goes over the link bundle first, then file by file; a file changed
/// after sealing is refused and the packet stays incomplete (and unlisted); another appliance's
/// bundle is refused; once the file is as sealed, the packet completes with the sealed bytes.
#[test]
fn a_packet_is_taken_file_by_file_only_as_its_sealed_bundle_names_it() {
    let Some(pg) =
        PgServer::start("a_packet_is_taken_file_by_file_only_as_its_sealed_bundle_names_it")
    else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, _) = setup(dir, &url, &["Acme IT", "Beta MSP"]);
    let base = format!("https://127.0.0.1:{port}/");
    let _server = Server::start(dir, &url, port);
    let sql = |query: &str| common::psql(&pg, query);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = Box_::new(1, "AAAA-BBBB-CCCC");
    let b = Box_::new(2, "DDDD-EEEE-FFFF");
    let (a_dir, b_dir) = (dir.join("a-link"), dir.join("b-link"));
    let step = |appliance: &Box_, link_dir: &std::path::Path| {
        runtime.block_on(async { link(&base, link_dir, &server_ca).step(appliance).await })
    };
    step(&a, &a_dir).unwrap();
    step(&b, &b_dir).unwrap();
    for (site, code) in [("1", "AAAA-BBBB-CCCC"), ("2", "DDDD-EEEE-FFFF")] {
        ok(&central(
            dir,
            &url,
            &["admin", "claim", "--site", site, code],
        ));
    }
    step(&a, &a_dir).unwrap();
    step(&b, &b_dir).unwrap();

    // A's report edited after its bundle was sealed.
    let packet = sealed_packet(&a.key, &dir.join("a-packets/2026-11"));
    let csv = packet.dir.join("hipaa-2026-11.csv");
    let sealed_csv = std::fs::read(&csv).unwrap();
    std::fs::write(&csv, "framework,control\nHIPAA,edited\n").unwrap();
    *a.packets.lock().unwrap() = vec![packet.clone()];
    let err = step(&a, &a_dir).unwrap_err();
    assert!(
        matches!(&err, LinkError::Refused { status: 400, message, .. } if message.contains("hipaa-2026-11.csv has SHA-256")),
        "{err}"
    );
    assert_eq!(
        sql("SELECT period || ' ' || complete FROM packets"),
        "2026-11 false"
    );
    assert_eq!(
        sql("SELECT string_agg(name, ' ' ORDER BY name) FROM packet_files WHERE content IS NULL"),
        "hipaa-2026-11.csv",
        "the manifest arrived, the edited report did not"
    );
    // B offers A's sealed bundle as its own: refused (not signed by B's key); nothing kept.
    *b.packets.lock().unwrap() = vec![packet.clone()];
    let err = step(&b, &b_dir).unwrap_err();
    assert!(
        matches!(&err, LinkError::Refused { status: 400, message, .. } if message.contains("does not verify under this appliance's evidence key")),
        "{err}"
    );
    assert_eq!(
        sql("SELECT count(*) FROM packets WHERE appliance_id = 2"),
        "0"
    );

    // The report as sealed: the packet completes (a new link process; the refusal was
    // remembered only in memory).
    std::fs::write(&csv, &sealed_csv).unwrap();
    step(&a, &a_dir).unwrap();
    assert_eq!(sql("SELECT complete FROM packets"), "t");
    assert_eq!(
        sql("SELECT encode(content, 'escape') FROM packet_files WHERE name = 'hipaa-2026-11.csv'"),
        String::from_utf8(sealed_csv).unwrap().trim_end()
    );
    // Sent once: another step sends nothing again.
    step(&a, &a_dir).unwrap();
    assert_eq!(sql("SELECT count(*) FROM packet_files"), "2");
}
