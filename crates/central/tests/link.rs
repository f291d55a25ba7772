//! The appliance link end to end against a real PostgreSQL and the real `osiris-central serve`
//! over TLS: enrollment by claim code, the partner's claim, certificate pickup, in-order pushes
//! over mutual TLS, the witness's cosignature, and the refusals (wrong or used code, no or a
//! foreign client certificate, replayed and reordered pushes, a forked log, bad signatures,
//! oversized bodies).

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use evidence::{ApplianceKey, Checkpoint, MerkleTree, WitnessVerifier, leaf_hash};
use link_proto::{EnrollRequest, PickupRequest, PushItem, PushRequest};
use rcgen::{KeyPair, PKCS_ED25519, PublicKeyData};
use test_support::postgres::PgServer;

mod common;
use common::{CODE, Server, central, https_client, ok, setup, text};

async fn post(
    client: &reqwest::Client,
    port: u16,
    path: &str,
    body: &impl serde::Serialize,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let response = client
        .post(format!("https://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Appliance {
    key: ApplianceKey,
    tls: KeyPair,
    tree: MerkleTree,
}

impl Appliance {
    fn new(seed: u8) -> Appliance {
        Appliance {
            key: ApplianceKey::from_seed(&[seed; 32]),
            tls: KeyPair::generate_for(&PKCS_ED25519).unwrap(),
            tree: MerkleTree::new(),
        }
    }

    fn enroll(&self, code: &str) -> EnrollRequest {
        let appliance_key = self.key.verifier().to_string();
        let tls_public_key = BASE64.encode(self.tls.subject_public_key_info());
        EnrollRequest {
            claim_proof: BASE64
                .encode(link_proto::claim_proof(code, &appliance_key, &tls_public_key).unwrap()),
            signature: link_proto::sign_with_appliance_key(
                &self.key,
                &link_proto::enroll_message(&appliance_key, &tls_public_key),
            ),
            appliance_key,
            tls_public_key,
        }
    }

    fn pickup(&self, enrollment_id: i64) -> PickupRequest {
        let time = now();
        PickupRequest {
            enrollment_id,
            time,
            signature: link_proto::sign_with_appliance_key(
                &self.key,
                &link_proto::pickup_message(enrollment_id, time),
            ),
        }
    }

    fn checkpoint_push(&mut self, seq: u64, add: usize, tag: &str, from: u64) -> PushRequest {
        for i in 0..add {
            self.tree.push(leaf_hash(format!("{tag}-{i}").as_bytes()));
        }
        let note = Checkpoint {
            origin: self.key.origin().to_owned(),
            size: self.tree.len(),
            root: self.tree.root(),
        }
        .sign(&self.key);
        let proof = if from == 0 {
            Vec::new()
        } else {
            self.tree.consistency_proof(from, self.tree.len()).unwrap()
        };
        PushRequest {
            seq,
            item: PushItem::Checkpoint {
                note,
                proof_from: from,
                proof: proof.iter().map(|h| BASE64.encode(h)).collect(),
            },
        }
    }
}

fn note_of(push: &PushRequest) -> String {
    match &push.item {
        PushItem::Checkpoint { note, .. } => note.clone(),
        _ => unreachable!("only checkpoints here"),
    }
}

#[test]
fn an_appliance_is_claimed_by_code_and_its_checkpoints_are_witnessed_over_mutual_tls() {
    let Some(pg) = PgServer::start(
        "an_appliance_is_claimed_by_code_and_its_checkpoints_are_witnessed_over_mutual_tls",
    ) else {
        return;
    };
    let url = pg.create_database("central");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (port, server_ca, witness_key) = setup(dir, &url, &["Acme IT"]);
    let witness: WitnessVerifier = witness_key.parse().unwrap();
    // Never replaced.
    assert!(
        !central(
            dir,
            &url,
            &["link", "init", "--witness-name", "x.example/w"]
        )
        .status
        .success()
    );
    assert_eq!(
        ok(&central(dir, &url, &["link", "witness-key"])).trim(),
        witness_key
    );
    let _server = Server::start(dir, &url, port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let anonymous = https_client(&server_ca, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while anonymous
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let mut appliance = Appliance::new(1);
        // A forged enrollment (signature by another key) is refused.
        let mut forged = appliance.enroll(CODE);
        forged.signature =
            link_proto::sign_with_appliance_key(&ApplianceKey::from_seed(&[9; 32]), b"x");
        let (status, body) = post(&anonymous, port, link_proto::path::ENROLL, &forged)
            .await
            .unwrap();
        assert_eq!(status, 401, "{body}");
        // Hostile text where a key belongs: a clear 400, nothing stored.
        let mut hostile = appliance.enroll(CODE);
        hostile.appliance_key = "'; DROP TABLE enrollments;-- <script>".into();
        let (status, body) = post(&anonymous, port, link_proto::path::ENROLL, &hostile)
            .await
            .unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("appliance_key"),
            "{body}"
        );
        // An oversized body is refused before it is parsed.
        let (status, _) = post(
            &anonymous,
            port,
            link_proto::path::ENROLL,
            &"x".repeat(300 * 1024),
        )
        .await
        .unwrap();
        assert_eq!(status, 413);

        let (status, body) = post(
            &anonymous,
            port,
            link_proto::path::ENROLL,
            &appliance.enroll(CODE),
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{body}");
        let enrollment_id = body["enrollment_id"].as_i64().unwrap();
        let (status, body) = post(
            &anonymous,
            port,
            link_proto::path::PICKUP,
            &appliance.pickup(enrollment_id),
        )
        .await
        .unwrap();
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("pending")),
            "{body}"
        );
        // Someone else cannot collect it (signature by another key): same answer as an unknown id.
        let mut stranger = appliance.pickup(enrollment_id);
        stranger.signature = link_proto::sign_with_appliance_key(
            &ApplianceKey::from_seed(&[8; 32]),
            &link_proto::pickup_message(enrollment_id, stranger.time),
        );
        let (status, _) = post(&anonymous, port, link_proto::path::PICKUP, &stranger)
            .await
            .unwrap();
        assert_eq!(status, 404);

        // The partner types a wrong code, then the right one; the code works once.
        let out = central(
            dir,
            &url,
            &["admin", "claim", "--site", "1", "7K3M-9Q2X-ABCE"],
        );
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("no appliance is waiting with this code"),
            "{}",
            text(&out.stderr)
        );
        let out = central(
            dir,
            &url,
            &["admin", "claim", "--site", "1", "7k3m 9q2x abcd"],
        );
        assert!(
            ok(&out).contains("claimed appliance"),
            "{}",
            text(&out.stdout)
        );
        let out = central(dir, &url, &["admin", "claim", "--site", "1", CODE]);
        assert!(!out.status.success(), "a used code claimed again");

        let (status, body) = post(
            &anonymous,
            port,
            link_proto::path::PICKUP,
            &appliance.pickup(enrollment_id),
        )
        .await
        .unwrap();
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("issued")),
            "{body}"
        );
        assert_eq!(body["witness_key"].as_str(), Some(witness_key.as_str()));
        let cert = body["certificate_pem"].as_str().unwrap().to_owned();
        let tls_key = appliance.tls.serialize_pem();

        // Without a client certificate a push is refused.
        let first = appliance.checkpoint_push(1, 10, "a", 0);
        let (status, body) = post(&anonymous, port, link_proto::path::PUSH, &first)
            .await
            .unwrap();
        assert_eq!(status, 401, "{body}");
        // Nor are agent releases offered or handed out.
        for path in [
            link_proto::path::AGENT_RELEASES.to_owned(),
            link_proto::agent_release_binary_path(1),
        ] {
            let (status, body) = post(&anonymous, port, &path, &serde_json::json!({}))
                .await
                .unwrap();
            assert_eq!(
                (status, body["error"].as_str()),
                (
                    401,
                    Some("this needs the appliance's client certificate (mutual TLS)")
                ),
                "{path}"
            );
        }

        let linked = https_client(&server_ca, Some((&cert, &tls_key)));
        // Linked, with no rollout: nothing is offered and the binary is not handed out.
        let (status, body) = post(
            &linked,
            port,
            link_proto::path::AGENT_RELEASES,
            &serde_json::json!({}),
        )
        .await
        .unwrap();
        assert_eq!((status, body), (200, serde_json::json!({"releases": []})));
        let (status, body) = post(
            &linked,
            port,
            &link_proto::agent_release_binary_path(1),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
        assert_eq!(
            (status, body["error"].as_str()),
            (
                404,
                Some("agent release 1 is not offered to this appliance")
            )
        );
        let (status, body) = post(&linked, port, link_proto::path::PUSH, &first)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["next_seq"], 2);
        assert_eq!(body["witness_size"], 10);
        let cosignature = body["cosignature"].as_str().unwrap();
        let cosigned = format!("{}{cosignature}", note_of(&first));
        assert!(witness.verify(&cosigned).unwrap().time >= now() - 60);

        // Replayed and reordered pushes change nothing and say what to send.
        let (status, body) = post(&linked, port, link_proto::path::PUSH, &first)
            .await
            .unwrap();
        assert_eq!(
            (status, body["next_seq"].as_u64()),
            (409, Some(2)),
            "{body}"
        );
        let mut later = appliance.clone_tree_push(3);
        let (status, body) = post(&linked, port, link_proto::path::PUSH, &later)
            .await
            .unwrap();
        assert_eq!(
            (status, body["next_seq"].as_u64()),
            (409, Some(2)),
            "{body}"
        );
        later.seq = 2;
        let (status, body) = post(&linked, port, link_proto::path::PUSH, &later)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");

        // The site rewrites its history: refused as a fork, recorded, alerted.
        let mut rewritten = Appliance::new(1);
        let fork = rewritten.checkpoint_push(3, 40, "rewritten", 0);
        let fork = match fork.item {
            PushItem::Checkpoint { note, .. } => PushRequest {
                seq: 3,
                item: PushItem::Checkpoint {
                    note,
                    proof_from: appliance.tree.len(),
                    proof: rewritten
                        .tree
                        .consistency_proof(appliance.tree.len(), 40)
                        .unwrap()
                        .iter()
                        .map(|h| BASE64.encode(h))
                        .collect(),
                },
            },
            _ => unreachable!("a checkpoint push"),
        };
        let (status, body) = post(&linked, port, link_proto::path::PUSH, &fork)
            .await
            .unwrap();
        assert_eq!(status, 409, "{body}");
        assert!(body["error"].as_str().unwrap().contains("fork"), "{body}");
        let alerts = pg.client(
            "psql",
            &[
                "-d",
                "central",
                "-At",
                "-c",
                "SELECT severity || ' ' || kind FROM alerts",
            ],
        );
        assert_eq!(text(&alerts.stdout).trim(), "critical evidence_fork");

        // A certificate from another Central Command's CA for the same key: the handshake fails.
        let other = tempfile::tempdir().unwrap();
        let foreign_ca = central::link_ca::LinkCa::create(&other.path().join("ca")).unwrap();
        let public =
            central::link_ca::ed25519_from_spki(&appliance.tls.subject_public_key_info()).unwrap();
        let (_, foreign) = foreign_ca.issue(&public, 1).unwrap();
        let impostor = https_client(&server_ca, Some((&foreign, &tls_key)));
        let next = appliance.checkpoint_push(4, 1, "c", 15);
        assert!(
            post(&impostor, port, link_proto::path::PUSH, &next)
                .await
                .is_err(),
            "a foreign certificate was accepted"
        );
        // The real one carries on.
        let (status, body) = post(&linked, port, link_proto::path::PUSH, &next)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["witness_size"], 16);
    });
}

impl Appliance {
    /// The next checkpoint (5 more entries) with a proof from the current size, as push `seq`.
    fn clone_tree_push(&mut self, seq: u64) -> PushRequest {
        let from = self.tree.len();
        self.checkpoint_push(seq, 5, "b", from)
    }
}
