//! The witness against a real PostgreSQL: cosigned heads, a rewritten log refused as a fork and
//! kept as proof with a critical alert, stale and foreign checkpoints refused, and concurrent
//! pushes of one appliance judged one at a time.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use central::witness_store::{Outcome, WitnessStoreError, push_checkpoint};
use evidence::{ApplianceKey, Checkpoint, MerkleTree, WitnessKey, leaf_hash};
use sqlx::PgPool;
use test_support::postgres::PgServer;

struct Log {
    key: ApplianceKey,
    tree: MerkleTree,
}

impl Log {
    fn new(seed: u8) -> Log {
        Log {
            key: ApplianceKey::from_seed(&[seed; 32]),
            tree: MerkleTree::new(),
        }
    }

    fn append(&mut self, n: usize, tag: &str) {
        for i in 0..n {
            self.tree.push(leaf_hash(format!("{tag}-{i}").as_bytes()));
        }
    }

    fn checkpoint(&self) -> String {
        Checkpoint {
            origin: self.key.origin().to_owned(),
            size: self.tree.len(),
            root: self.tree.root(),
        }
        .sign(&self.key)
    }

    fn proof(&self, old: u64) -> Vec<[u8; 32]> {
        self.tree.consistency_proof(old, self.tree.len()).unwrap()
    }
}

async fn setup(url: &str) -> PgPool {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap();
    central::db::migrate(&pool).await.unwrap();
    sqlx::query("INSERT INTO partners (name) VALUES ('Acme IT')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO practices (partner_id, name) VALUES (1, 'Smile Dental')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO sites (partner_id, practice_id, name) VALUES (1, 1, 'Main office')")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

async fn add_appliance(pool: &PgPool, key: &ApplianceKey, tag: u8) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO appliances (partner_id, site_id, appliance_key, cert_sha256, certificate) VALUES (1, 1, $1, $2, $3) RETURNING id",
    )
    .bind(key.verifier().to_string())
    .bind(vec![tag; 32])
    .bind(vec![tag; 8])
    .fetch_one(pool)
    .await
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn cosigned(outcome: Outcome) -> String {
    match outcome {
        Outcome::Cosigned { cosignature } => cosignature,
        Outcome::Fork { reason } => panic!("unexpected fork: {reason}"),
    }
}

#[test]
fn the_witness_cosigns_extensions_and_refuses_a_rewritten_log() {
    let Some(pg) = PgServer::start("the_witness_cosigns_extensions_and_refuses_a_rewritten_log")
    else {
        return;
    };
    let url = pg.create_database("central");
    runtime().block_on(async {
        let pool = setup(&url).await;
        let witness = WitnessKey::from_seed("central.acme-it.example/witness", &[42; 32]).unwrap();
        let mut log = Log::new(1);
        let id = add_appliance(&pool, &log.key, 1).await;

        log.append(10, "a");
        let first = log.checkpoint();
        let line = cosigned(
            push_checkpoint(&pool, id, &first, 0, &[], &witness, 1_000)
                .await
                .unwrap(),
        );
        // The cosignature is a C2SP cosignature of exactly that checkpoint.
        let cosigned_note = format!("{first}{line}");
        assert_eq!(
            witness.verifier().verify(&cosigned_note).unwrap().time,
            1_000
        );

        log.append(5, "b");
        let proof = log.proof(10);
        cosigned(
            push_checkpoint(&pool, id, &log.checkpoint(), 10, &proof, &witness, 2_000)
                .await
                .unwrap(),
        );
        let head: (i64, String) =
            sqlx::query_as("SELECT size, note FROM witness_heads WHERE appliance_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(head, (15, log.checkpoint()));

        // A replayed older checkpoint is refused, nothing recorded as a fork.
        let err = push_checkpoint(&pool, id, &first, 15, &[], &witness, 3_000)
            .await
            .unwrap_err();
        assert!(matches!(err, WitnessStoreError::Refused(_)), "{err}");
        assert!(
            err.to_string()
                .contains("older than the last one witnessed"),
            "{err}"
        );

        // The site rewrites its history (same key, entry 3 changed) and pushes a longer log.
        let mut rewritten = Log::new(1);
        rewritten.append(10, "a");
        rewritten.tree = MerkleTree::new();
        for i in 0..20 {
            let tag = if i == 3 {
                "tampered".to_owned()
            } else {
                format!("x-{i}")
            };
            rewritten.tree.push(leaf_hash(tag.as_bytes()));
        }
        let proof = rewritten.proof(15);
        let outcome = push_checkpoint(
            &pool,
            id,
            &rewritten.checkpoint(),
            15,
            &proof,
            &witness,
            4_000,
        )
        .await
        .unwrap();
        assert!(
            matches!(&outcome, Outcome::Fork { reason } if reason.contains("does not extend")),
            "{outcome:?}"
        );
        // Kept as proof, alerted as critical to the partner, head unchanged.
        let fork: (String, String) = sqlx::query_as(
            "SELECT head_note, offered_note FROM witness_forks WHERE appliance_id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(fork, (log.checkpoint(), rewritten.checkpoint()));
        let alert: (String, String, i64) =
            sqlx::query_as("SELECT severity::text, message, partner_id FROM alerts")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(alert.0, "critical");
        assert!(alert.1.contains("was rewritten"), "{}", alert.1);
        assert_eq!(alert.2, 1);
        let size: i64 =
            sqlx::query_scalar("SELECT size FROM witness_heads WHERE appliance_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(size, 15);
        // The proof cannot be erased.
        assert!(
            sqlx::query("DELETE FROM witness_forks")
                .execute(&pool)
                .await
                .is_err()
        );

        // The honest log keeps being witnessed after the refused fork.
        log.append(1, "c");
        let proof = log.proof(15);
        cosigned(
            push_checkpoint(&pool, id, &log.checkpoint(), 15, &proof, &witness, 5_000)
                .await
                .unwrap(),
        );

        // A checkpoint signed by another appliance's key is not this appliance's.
        let mut other = Log::new(2);
        other.append(30, "o");
        let err = push_checkpoint(&pool, id, &other.checkpoint(), 16, &[], &witness, 6_000)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("not a valid checkpoint of this appliance"),
            "{err}"
        );
        let err = push_checkpoint(&pool, 999, &log.checkpoint(), 0, &[], &witness, 6_000)
            .await
            .unwrap_err();
        assert!(matches!(err, WitnessStoreError::UnknownAppliance(999)));
    });
}

#[test]
fn concurrent_pushes_of_one_appliance_never_move_the_head_backwards() {
    let Some(pg) =
        PgServer::start("concurrent_pushes_of_one_appliance_never_move_the_head_backwards")
    else {
        return;
    };
    let url = pg.create_database("central");
    runtime().block_on(async {
        let pool = setup(&url).await;
        let witness = WitnessKey::from_seed("central.acme-it.example/witness", &[42; 32]).unwrap();
        let mut log = Log::new(7);
        let id = add_appliance(&pool, &log.key, 7).await;
        log.append(1, "seed");
        cosigned(
            push_checkpoint(&pool, id, &log.checkpoint(), 0, &[], &witness, 1)
                .await
                .unwrap(),
        );
        // Checkpoints of sizes 2..=21, each with a proof from size 1 (valid against any head
        // reached so far only if the witness serialises them; out-of-order ones are stale).
        let mut pushes = Vec::new();
        for n in 2..=21u64 {
            log.append(1, "n");
            let note = log.checkpoint();
            let proof = log.tree.consistency_proof(1, n).unwrap();
            pushes.push((n, note, proof));
        }
        let mut tasks = Vec::new();
        for (n, note, proof) in pushes {
            let pool = pool.clone();
            let witness = witness.clone();
            tasks.push(tokio::spawn(async move {
                (
                    n,
                    push_checkpoint(&pool, id, &note, 1, &proof, &witness, n).await,
                )
            }));
        }
        let mut sizes_cosigned = Vec::new();
        for task in tasks {
            let (n, result) = task.await.unwrap();
            match result {
                Ok(Outcome::Cosigned { .. }) => sizes_cosigned.push(n),
                // Judged after another push moved the head: the proof (from size 1) no longer
                // starts at the head, or the checkpoint is older: refused, to retry. Never a fork.
                Err(WitnessStoreError::Refused(_)) => {}
                Ok(Outcome::Fork { reason }) => {
                    panic!("crossed honest pushes taken for a fork: {reason}")
                }
                Err(err) => panic!("{err}"),
            }
        }
        let head: i64 =
            sqlx::query_scalar("SELECT size FROM witness_heads WHERE appliance_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            head,
            i64::try_from(*sizes_cosigned.iter().max().unwrap()).unwrap()
        );
        // Every cosigned size is recorded once, in increasing order of acceptance.
        let recorded: Vec<i64> =
            sqlx::query_scalar("SELECT size FROM cosignatures WHERE appliance_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(recorded.windows(2).all(|w| w[0] < w[1]), "{recorded:?}");
        let forks: i64 = sqlx::query_scalar("SELECT count(*) FROM witness_forks")
            .fetch_one(&pool)
            .await
            .unwrap();
        let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            (forks, alerts),
            (0, 0),
            "no false alarm from crossed pushes"
        );
    });
}
