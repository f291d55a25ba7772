//! The appliance's side of the link (`link-client`) against the real `osiris-central serve`:
//! two appliances claimed into two partners, both logs cosigned, state that survives a restart,
//! catching up in order after Central Command was away, and a rewritten log refused once per
//! checkpoint without wedging the link.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::sync::Mutex;

use evidence::{ApplianceKey, Checkpoint, MerkleTree, WitnessVerifier, leaf_hash};
use link_client::{Appliance, Link, LinkError, LinkStatus};
use test_support::postgres::PgServer;

mod common;
use common::{Server, central, ok, setup};

/// An appliance in memory: its evidence key, its Merkle log, the cosignatures it kept.
struct Box_ {
    key: ApplianceKey,
    code: String,
    tree: Mutex<MerkleTree>,
    cosignatures: Mutex<Vec<(u64, String)>>,
    devices: Mutex<Vec<link_proto::DeviceSummary>>,
}

fn device(name: &str, status: &str, failing: &[&str]) -> link_proto::DeviceSummary {
    link_proto::DeviceSummary {
        name: name.to_owned(),
        class: "workstation".to_owned(),
        status: status.to_owned(),
        last_scan_at: Some(1_764_000_000),
        checks_total: 5,
        checks_failed: failing.len() as u32,
        failing: failing.iter().map(|s| (*s).to_owned()).collect(),
    }
}

impl Box_ {
    fn new(seed: u8, code: &str) -> Box_ {
        Box_ {
            key: ApplianceKey::from_seed(&[seed; 32]),
            code: code.to_owned(),
            tree: Mutex::new(MerkleTree::new()),
            cosignatures: Mutex::new(Vec::new()),
            devices: Mutex::new(Vec::new()),
        }
    }

    fn append(&self, n: usize, tag: &str) {
        let mut tree = self.tree.lock().unwrap();
        for i in 0..n {
            tree.push(leaf_hash(format!("{tag}-{i}").as_bytes()));
        }
    }

    fn note(&self) -> String {
        let tree = self.tree.lock().unwrap();
        Checkpoint {
            origin: self.key.origin().to_owned(),
            size: tree.len(),
            root: tree.root(),
        }
        .sign(&self.key)
    }
}

impl Appliance for Box_ {
    fn appliance_key(&self) -> String {
        self.key.verifier().to_string()
    }

    fn claim_code(&self) -> String {
        self.code.clone()
    }

    fn sign_link_message(&self, message: &[u8]) -> String {
        link_proto::sign_with_appliance_key(&self.key, message)
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, String> {
        let size = self.tree.lock().unwrap().len();
        Ok((size > 0).then(|| (size, self.note())))
    }

    async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, String> {
        self.tree
            .lock()
            .unwrap()
            .consistency_proof(old, new)
            .ok_or_else(|| format!("no proof {old}..{new}"))
    }

    async fn keep_cosignature(&self, size: u64, line: &str) -> Result<(), String> {
        self.cosignatures
            .lock()
            .unwrap()
            .push((size, line.to_owned()));
        Ok(())
    }

    async fn devices(&self) -> Result<link_client::Snapshot, String> {
        let scores = vec![link_proto::FrameworkSummary {
            framework: "HIPAA".into(),
            permille: Some(875),
        }];
        Ok((1_764_000_100, self.devices.lock().unwrap().clone(), scores))
    }
}

fn link(base: &str, dir: &std::path::Path, ca: &str) -> Link {
    Link::open(&base.parse().unwrap(), dir, Some(ca.as_bytes().to_vec())).unwrap()
}

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
    let sql = |query: &str| {
        let out = pg.client("psql", &["-d", "central", "-At", "-c", query]);
        assert!(
            out.status.success(),
            "{query}: {}",
            common::text(&out.stderr)
        );
        common::text(&out.stdout).trim().to_owned()
    };
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
