//! `osiris-central bench`: the figures docs/PERFORMANCE.md records for Central Command — the
//! witness's cosigning rate (pure, and through PostgreSQL), and the appliance link under a
//! fleet's load: N appliances with real client certificates pushing checkpoints over real TLS on
//! loopback to an in-process server, push-to-commit latency percentiles, and database growth.
//! Runs only against an empty database (it refuses one that holds partners).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use evidence::{ApplianceKey, Checkpoint, MerkleTree, WitnessKey, leaf_hash};
use rcgen::{CertificateParams, KeyPair, PKCS_ED25519};
use sqlx::PgPool;

use crate::link::LinkKeys;
use crate::link_ca::LinkCa;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Simulated appliances.
    pub appliances: usize,
    /// Each appliance pushes once per this many seconds.
    pub interval: Duration,
    /// How long the fleet runs.
    pub duration: Duration,
    /// Bundles each appliance adds between pushes (a 200-device site's scan cycle).
    pub bundles_per_push: usize,
}

/// The figures.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Pure `witness::judge` (verify the appliance's signature and the consistency proof,
    /// cosign), one core.
    pub judge_per_sec: f64,
    /// `witness_store::push_checkpoint` through PostgreSQL, sequential.
    pub stored_per_sec: f64,
    /// The same with 16 appliances pushing at once.
    pub concurrent_per_sec: f64,
    /// Database bytes per accepted push.
    pub bytes_per_push: f64,
    /// Pushes made by the fleet run.
    pub pushes: usize,
    /// Pushes that failed.
    pub failures: usize,
    /// Push-to-commit latency percentiles (ms): p50, p99, max.
    pub latency_ms: (f64, f64, f64),
    /// The polls each link step makes after its pushes (kit requests, release offer, escalation
    /// channels with their sealing): how many, how many failed, and p50, p99, max (ms) of the
    /// three together.
    pub polls: (usize, usize, (f64, f64, f64)),
    /// Database size growth per appliance per month (bytes), extrapolated from the run.
    pub growth_per_appliance_month: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct SimLog {
    key: ApplianceKey,
    tree: MerkleTree,
    witnessed: u64,
}

impl SimLog {
    fn new(seed: u64) -> SimLog {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8] = 0x5a;
        SimLog {
            key: ApplianceKey::from_seed(&bytes),
            tree: MerkleTree::new(),
            witnessed: 0,
        }
    }

    fn grow(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.tree.len();
            self.tree.push(leaf_hash(format!("bundle-{i}").as_bytes()));
        }
    }

    fn note(&self) -> String {
        Checkpoint {
            origin: self.key.origin().to_owned(),
            size: self.tree.len(),
            root: self.tree.root(),
        }
        .sign(&self.key)
    }

    fn proof(&self) -> Vec<[u8; 32]> {
        if self.witnessed == 0 {
            Vec::new()
        } else {
            self.tree
                .consistency_proof(self.witnessed, self.tree.len())
                .unwrap_or_default()
        }
    }
}

/// The pure judgement rate over `n` checkpoints of growing logs.
pub fn judge_rate(n: usize) -> f64 {
    let witness =
        WitnessKey::from_seed("bench.example/witness", &[1; 32]).unwrap_or_else(|_| unreachable!());
    let mut logs: Vec<SimLog> = (0..16).map(|i| SimLog::new(i as u64)).collect();
    let mut heads: Vec<Option<crate::witness::Head>> = vec![None; logs.len()];
    let mut inputs = Vec::with_capacity(n);
    for i in 0..n {
        let idx = i % logs.len();
        let log = &mut logs[idx];
        log.grow(20);
        inputs.push((idx, log.note(), log.witnessed, log.proof()));
        log.witnessed = log.tree.len();
    }
    let verifiers: Vec<_> = logs.iter().map(|log| log.key.verifier()).collect();
    let started = Instant::now();
    for (idx, note, from, proof) in &inputs {
        let verdict = crate::witness::judge(
            &verifiers[*idx],
            heads[*idx].as_ref(),
            note,
            *from,
            proof,
            &witness,
            1,
        );
        if let Ok(crate::witness::Verdict::Cosign { head, .. }) = verdict {
            heads[*idx] = Some(head);
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Runs everything against the empty database at `pool`.
pub async fn run(
    pool: &PgPool,
    opts: &BenchOptions,
    scratch: &std::path::Path,
) -> anyhow::Result<BenchReport> {
    let partners: i64 = sqlx::query_scalar("SELECT count(*) FROM partners")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        partners == 0,
        "the bench needs an empty database (this one holds {partners} partners): point DATABASE_URL at a scratch database"
    );
    let judge_per_sec = tokio::task::spawn_blocking(|| judge_rate(20_000)).await?;

    sqlx::query("INSERT INTO partners (name) VALUES ('Bench MSP')")
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO practices (partner_id, name) VALUES (1, 'Bench practice')")
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO sites (partner_id, practice_id, name) VALUES (1, 1, 'Bench site')")
        .execute(pool)
        .await?;
    // One escalation channel, so every channels poll opens and re-seals a secret.
    let at_rest = link_proto::seal::seal(
        &crate::link::channel_key_from("bench").public(),
        b"https://hooks.slack.example/services/T0/B0/bench",
        &crate::scope::channel_at_rest_info(1, "oncall"),
    )?;
    sqlx::query(
        "INSERT INTO partner_channels (partner_id, name, kind, min_severity, secret_sealed, updated_by)
         VALUES (1, 'oncall', 'slack', 'high', $1, 'bench')",
    )
    .bind(serde_json::json!(at_rest))
    .execute(pool)
    .await?;
    let ca = LinkCa::create(&scratch.join("link-ca"))?;
    let witness = WitnessKey::from_seed("bench.example/witness", &[2; 32])
        .map_err(|err| anyhow::anyhow!("{err}"))?;

    // Stored rate: one appliance, sequential pushes through the database.
    let mut log = SimLog::new(u64::MAX);
    let id = insert_appliance(pool, &ca, &log.key, &KeyPair::generate_for(&PKCS_ED25519)?).await?;
    let n = 2_000;
    let started = Instant::now();
    for _ in 0..n {
        log.grow(5);
        let from = log.witnessed;
        let proof = log.proof();
        crate::witness_store::push_checkpoint(pool, id, &log.note(), from, &proof, &witness, 1)
            .await?;
        log.witnessed = log.tree.len();
    }
    let stored_per_sec = f64::from(n) / started.elapsed().as_secs_f64();

    // Concurrent: 16 appliances pushing at once (the witness locks per appliance only).
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = 500;
    let started = Instant::now();
    for t in 0..16u64 {
        let mut log = SimLog::new(1_000_000 + t);
        let id =
            insert_appliance(pool, &ca, &log.key, &KeyPair::generate_for(&PKCS_ED25519)?).await?;
        let pool = pool.clone();
        let witness = witness.clone();
        tasks.spawn(async move {
            for _ in 0..per_task {
                log.grow(5);
                let from = log.witnessed;
                let proof = log.proof();
                crate::witness_store::push_checkpoint(
                    &pool,
                    id,
                    &log.note(),
                    from,
                    &proof,
                    &witness,
                    1,
                )
                .await?;
                log.witnessed = log.tree.len();
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let concurrent_per_sec = f64::from(16 * per_task) / started.elapsed().as_secs_f64();

    // The fleet: an in-process server over TLS, each appliance its own client certificate.
    let server_key = KeyPair::generate_for(&PKCS_ED25519)?;
    let server_cert =
        CertificateParams::new(vec!["127.0.0.1".to_owned()])?.self_signed(&server_key)?;
    std::fs::write(scratch.join("server.pem"), server_cert.pem())?;
    std::fs::write(scratch.join("server.key"), server_key.serialize_pem())?;
    let tls = crate::server::tls_config(
        &scratch.join("server.pem"),
        &scratch.join("server.key"),
        Some(ca.cert_der()),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let keys = Arc::new(LinkKeys {
        ca: LinkCa::load(&scratch.join("link-ca"))?,
        witness,
        channels: crate::link::channel_key_from("bench"),
    });
    let state = crate::server::AppState {
        pool: pool.clone(),
        link: Some(keys),
        l2: None,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve_tls(listener, state, tls, async {
        let _ = stop_rx.await;
    }));

    let size_before: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(pool)
        .await?;
    let mut fleet = Vec::with_capacity(opts.appliances);
    for i in 0..opts.appliances {
        let log = SimLog::new(i as u64);
        let tls_key = KeyPair::generate_for(&PKCS_ED25519)?;
        let id = insert_appliance(pool, &ca, &log.key, &tls_key).await?;
        let cert: Vec<u8> = sqlx::query_scalar("SELECT certificate FROM appliances WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
        fleet.push((
            log,
            client(&server_cert.pem(), &cert, &tls_key.serialize_pem())?,
        ));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let interval = opts.interval;
    let duration = opts.duration;
    let per_push = opts.bundles_per_push;
    let count = opts.appliances.max(1) as u32;
    for (i, (mut log, http)) in fleet.into_iter().enumerate() {
        // Spread the fleet's first pushes over one interval, as real appliances are.
        let offset = interval.mul_f64(i as f64 / f64::from(count));
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut polled = Vec::new();
            let mut poll_failures = 0usize;
            let sealing_key =
                link_proto::seal::OpeningKey::derive(&(i as u64).to_le_bytes().repeat(4)).public();
            tokio::time::sleep(offset).await;
            let mut seq = 1u64;
            let mut tick = tokio::time::interval(interval);
            while started.elapsed() < duration {
                tick.tick().await;
                log.grow(per_push);
                let request = link_proto::PushRequest {
                    seq,
                    item: link_proto::PushItem::Checkpoint {
                        note: log.note(),
                        proof_from: log.witnessed,
                        proof: log.proof().iter().map(|h| BASE64.encode(h)).collect(),
                    },
                };
                let sent = Instant::now();
                let ok = http
                    .post(format!(
                        "https://127.0.0.1:{port}{}",
                        link_proto::path::PUSH
                    ))
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&request).unwrap_or_default())
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    log.witnessed = log.tree.len();
                    seq += 1;
                } else {
                    failures += 1;
                }
                // What every link step asks after its pushes.
                let polls_started = Instant::now();
                let mut all_ok = true;
                for (path, body) in [
                    (link_proto::path::KIT_REQUESTS, serde_json::json!({})),
                    (link_proto::path::MANIFEST, serde_json::json!({})),
                    (link_proto::path::AGENT_RELEASES, serde_json::json!({})),
                    (link_proto::path::OPERATOR_ACTIONS, serde_json::json!({})),
                    (
                        link_proto::path::CHANNELS,
                        serde_json::json!({"sealing_key": sealing_key}),
                    ),
                ] {
                    all_ok &= http
                        .post(format!("https://127.0.0.1:{port}{path}"))
                        .header("content-type", "application/json")
                        .body(serde_json::to_vec(&body).unwrap_or_default())
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                }
                if all_ok {
                    polled.push(polls_started.elapsed().as_secs_f64() * 1000.0);
                } else {
                    poll_failures += 1;
                }
            }
            (latencies, failures, polled, poll_failures)
        });
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut polled = Vec::new();
    let mut poll_failures = 0;
    while let Some(result) = tasks.join_next().await {
        let (mut l, f, mut p, pf) = result?;
        latencies.append(&mut l);
        failures += f;
        polled.append(&mut p);
        poll_failures += pf;
    }
    polled.sort_by(f64::total_cmp);
    let _ = stop_tx.send(());
    let _ = server.await;
    let size_after: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(pool)
        .await?;
    latencies.sort_by(f64::total_cmp);
    // Bytes per accepted push, times the pushes one appliance makes in 30 days.
    let pushes_per_month = 30.0 * 24.0 * 3600.0 / interval.as_secs_f64().max(1.0);
    let bytes_per_push = (size_after - size_before).max(0) as f64 / latencies.len().max(1) as f64;
    let growth = bytes_per_push * pushes_per_month;
    Ok(BenchReport {
        judge_per_sec,
        stored_per_sec,
        concurrent_per_sec,
        bytes_per_push,
        pushes: latencies.len(),
        failures,
        latency_ms: (
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0.0),
        ),
        growth_per_appliance_month: growth,
        polls: (
            polled.len(),
            poll_failures,
            (
                percentile(&polled, 0.50),
                percentile(&polled, 0.99),
                polled.last().copied().unwrap_or(0.0),
            ),
        ),
    })
}

async fn insert_appliance(
    pool: &PgPool,
    ca: &LinkCa,
    key: &ApplianceKey,
    tls: &KeyPair,
) -> anyhow::Result<i64> {
    let id: i64 = sqlx::query_scalar("SELECT nextval('appliances_id_seq')")
        .fetch_one(pool)
        .await?;
    let public =
        crate::link_ca::ed25519_from_spki(&rcgen::PublicKeyData::subject_public_key_info(tls))
            .ok_or_else(|| anyhow::anyhow!("not an Ed25519 key"))?;
    let (der, _) = ca.issue(&public, id)?;
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&der).into();
    sqlx::query(
        "INSERT INTO appliances (id, partner_id, site_id, appliance_key, cert_sha256, certificate) VALUES ($1, 1, 1, $2, $3, $4)",
    )
    .bind(id)
    .bind(key.verifier().to_string())
    .bind(digest.as_slice())
    .bind(&der)
    .execute(pool)
    .await?;
    Ok(id)
}

fn client(server_pem: &str, cert_der: &[u8], key_pem: &str) -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(
        server_pem.as_bytes(),
    )?)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![rustls::pki_types::CertificateDer::from(cert_der.to_vec())],
            rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?,
        )?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(30))
        .build()?)
}
