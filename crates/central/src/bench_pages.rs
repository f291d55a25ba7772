//! `osiris-central bench-pages`: the partner pages' server time and weight with a large
//! partner in PostgreSQL (by default 1,000 sites × 200 devices, seeded by [`crate::demo`]): each
//! page asked for repeatedly over real HTTP on loopback by a logged-in partner administrator,
//! with p50/p99 per page. Runs only against an empty database (it refuses one with partners).

use std::time::{Duration, Instant};

use sqlx::PgPool;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct PagesOptions {
    /// Sites of the one partner.
    pub sites: i64,
    /// Devices per site.
    pub devices: i64,
    /// Requests per page.
    pub rounds: usize,
}

/// One page's figures.
#[derive(Debug, Clone)]
pub struct PageFigures {
    /// What was asked for (a path pattern).
    pub page: String,
    /// Median response time, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// The largest answer's size in bytes (HTML, uncompressed).
    pub bytes: usize,
}

/// The report.
#[derive(Debug, Clone)]
pub struct PagesReport {
    /// How long seeding took.
    pub seed: Duration,
    /// Rows seeded: devices.
    pub devices: i64,
    /// Per page.
    pub pages: Vec<PageFigures>,
    /// Storing one appliance's device snapshot as the link does (devices, their history,
    /// compliance and the overview's counts in one transaction): p50 and p99, ms.
    pub snapshot_ms: (f64, f64),
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PagesBenchError {
    /// The database already holds partners.
    #[error("the database already holds partners; run the benchmark against an empty database")]
    NotEmpty,
    /// The database.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Creating the partner.
    #[error("{0}")]
    Admin(#[from] crate::admin::AdminError),
    /// The HTTP side.
    #[error("{0}")]
    Http(String),
}

/// Seeds, serves and measures.
pub async fn run(pool: &PgPool, opts: &PagesOptions) -> Result<PagesReport, PagesBenchError> {
    let partners: i64 = sqlx::query_scalar("SELECT count(*) FROM partners")
        .fetch_one(pool)
        .await?;
    if partners > 0 {
        return Err(PagesBenchError::NotEmpty);
    }
    let started = Instant::now();
    let created = crate::admin::create_partner(
        pool,
        "Bench MSP",
        "bench@msp.example",
        "a password only the bench knows",
        "bench",
    )
    .await?;
    let seeded = crate::demo::seed(
        pool,
        created.partner_id,
        crate::demo::Sizes {
            sites: opts.sites,
            devices: opts.devices,
        },
    )
    .await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    let seed = started.elapsed();
    let devices: i64 = sqlx::query_scalar("SELECT count(*) FROM devices")
        .fetch_one(pool)
        .await?;

    // A logged-in administrator: a session row as a login makes one.
    let token = "bench-session-token-not-a-secret";
    sqlx::query(
        "INSERT INTO sessions (token_sha256, user_id, csrf_token, mfa_done, expires_at)
         VALUES ($1, $2, 'bench', true, now() + interval '1 day')",
    )
    .bind(crate::auth::token_hash(token).as_slice())
    .bind(created.admin_id)
    .execute(pool)
    .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| PagesBenchError::Http(err.to_string()))?;
    let base = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|err| PagesBenchError::Http(err.to_string()))?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = crate::server::AppState {
        pool: pool.clone(),
        link: None,
        l2: None,
    };
    let server = tokio::spawn(crate::server::serve_plain(listener, state, async {
        let _ = stopped.await;
    }));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let (site, appliance) = (seeded.first_site, seeded.first_appliance);
    let device: String = sqlx::query_scalar(
        "SELECT name FROM devices WHERE appliance_id = $1 AND class = 'workstation' ORDER BY name LIMIT 1",
    )
    .bind(appliance)
    .fetch_one(pool)
    .await?;
    let pages = [
        ("/ (overview)", "/".to_owned()),
        ("/?part=sites (live refresh)", "/?part=sites".to_owned()),
        (
            "/?verdict=critical&sort=hipaa",
            "/?verdict=critical&sort=hipaa".to_owned(),
        ),
        ("/sites/{site}", format!("/sites/{site}")),
        (
            "/sites/{site}?part=incidents",
            format!("/sites/{site}?part=incidents"),
        ),
        (
            "/devices/{appliance}/{device}",
            format!(
                "/devices/{appliance}/{}",
                crate::web::encode_component(&device)
            ),
        ),
        ("/fleet", "/fleet".to_owned()),
        ("/evidence", "/evidence".to_owned()),
        ("/users", "/users".to_owned()),
        ("/account", "/account".to_owned()),
    ];
    let mut figures = Vec::new();
    for (name, path) in pages {
        let mut times = Vec::with_capacity(opts.rounds);
        let mut bytes = 0;
        for round in 0..opts.rounds + 2 {
            let started = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .header("cookie", format!("{}={token}", crate::api::COOKIE))
                .send()
                .await
                .map_err(|err| PagesBenchError::Http(err.to_string()))?;
            if !response.status().is_success() {
                return Err(PagesBenchError::Http(format!(
                    "{path}: HTTP {}",
                    response.status()
                )));
            }
            let body = response
                .bytes()
                .await
                .map_err(|err| PagesBenchError::Http(err.to_string()))?;
            // The first two warm the pool and PostgreSQL's caches.
            if round >= 2 {
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            bytes = bytes.max(body.len());
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
        figures.push(PageFigures {
            page: name.to_owned(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            bytes,
        });
    }
    let _ = stop.send(());
    let _ = server.await;
    let snapshot_ms = time_snapshots(pool, appliance, opts).await?;
    Ok(PagesReport {
        seed,
        devices,
        pages: figures,
        snapshot_ms,
    })
}

/// Pushes `opts.devices`-device snapshots of one appliance, each with a tenth of its devices
/// changed (so history rows are written), and times each store.
async fn time_snapshots(
    pool: &PgPool,
    appliance: i64,
    opts: &PagesOptions,
) -> Result<(f64, f64), PagesBenchError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut times = Vec::new();
    for round in 0..opts.rounds + 2 {
        let devices: Vec<link_proto::DeviceSummary> = (0..opts.devices)
            .map(|d| {
                let drifted = (d + round as i64) % 10 == 0;
                link_proto::DeviceSummary {
                    name: format!("ws-{d:04}.bench.clinic.example"),
                    class: "workstation".to_owned(),
                    status: if drifted { "drifted" } else { "compliant" }.to_owned(),
                    last_scan_at: Some(now),
                    checks_total: 5,
                    checks_failed: u32::from(drifted),
                    failing: if drifted {
                        vec!["WIN-WSBL-001".to_owned()]
                    } else {
                        Vec::new()
                    },
                    unchecked: None,
                }
            })
            .collect();
        let compliance = vec![link_proto::FrameworkSummary {
            framework: "HIPAA".to_owned(),
            permille: Some(900 + (round % 10) as u32),
        }];
        let started = Instant::now();
        crate::link::store_snapshot(pool, appliance, now + round as i64, &devices, &compliance)
            .await?;
        if round >= 2 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}
