//! The `osiris-central` binary: parse arguments, set up logging, run one command, map the
//! outcome to an exit code (78 for an unusable configuration).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

#[derive(Debug, Parser)]
#[command(
    name = "osiris-central",
    version,
    about = "Central Command: the MSP partner's multi-site server"
)]
struct Cli {
    /// Configuration file (TOML). The database comes from DATABASE_URL or its [database] table.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the embedded database migrations (safe to repeat; instances may run it at once).
    Migrate,
    /// Serve HTTP (migrates first).
    Serve {
        /// Listen address, e.g. 127.0.0.1:8443 (default: the config's `listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Check the configuration file and exit (0 valid, 78 invalid).
    Validate,
    /// Administrative commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Measure the witness and the link under a fleet's load (needs an empty scratch database).
    Bench {
        /// Simulated appliances, each with its own client certificate.
        #[arg(long, default_value_t = 1000)]
        appliances: usize,
        /// Seconds between one appliance's pushes.
        #[arg(long, default_value_t = 300)]
        interval_secs: u64,
        /// How long the fleet runs, in seconds.
        #[arg(long, default_value_t = 600)]
        duration_secs: u64,
        /// Bundles each appliance adds between pushes.
        #[arg(long, default_value_t = 200)]
        bundles_per_push: usize,
    },
    /// Measure the partner pages' server time and weight with a large partner (needs an empty
    /// scratch database; seeds it).
    BenchPages {
        /// Sites (one appliance each).
        #[arg(long, default_value_t = 1000)]
        sites: i64,
        /// Devices per site.
        #[arg(long, default_value_t = 200)]
        devices: i64,
        /// Requests per page.
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// The appliance link's keys.
    Link {
        #[command(subcommand)]
        command: LinkCommand,
    },
}

#[derive(Debug, Subcommand)]
enum LinkCommand {
    /// Create the link CA and the witness key (once per Central Command; every instance shares them).
    Init {
        /// Directory for the link CA (`ca.pem`, `ca.key`); default: the config's `link.ca_dir`.
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// File for the witness's signing key (0600); default: the config's `link.witness_key_file`.
        #[arg(long)]
        witness_key_file: Option<PathBuf>,
        /// The witness's name in its cosignatures, a schema-less URL (e.g. central.example-msp.com/witness).
        #[arg(long)]
        witness_name: String,
    },
    /// Print the witness's public key: what auditors pass to `osiris evidence verify --witness-key`.
    WitnessKey,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Partners (the MSPs).
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Create a practice (a customer of a partner).
    Practice {
        /// The partner's id (`admin partner list`).
        #[arg(long)]
        partner: i64,
        /// The practice's name.
        name: String,
    },
    /// Create a site of a practice.
    Site {
        /// The practice's id.
        #[arg(long)]
        practice: i64,
        /// The site's name.
        name: String,
    },
    /// Add a user to a partner.
    User {
        /// The partner's id.
        #[arg(long)]
        partner: i64,
        /// The login e-mail address.
        #[arg(long)]
        email: String,
        /// partner_admin, partner_technician, practice_viewer or auditor.
        #[arg(long)]
        role: String,
        /// File holding the initial password (mode 0600), or `-` for stdin.
        #[arg(long)]
        password_file: PathBuf,
        /// The practice a practice_viewer (or auditor) is limited to.
        #[arg(long)]
        practice: Option<i64>,
        /// Days until an auditor's access ends.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Image releases relayed to the fleet.
    Release {
        #[command(subcommand)]
        command: ReleaseCommand,
    },
    /// Endpoint-agent releases relayed to the fleet.
    AgentRelease {
        #[command(subcommand)]
        command: AgentReleaseCommand,
    },
    /// Fill a partner with made-up practices, sites, appliances, devices, incidents and 90 days of
    /// compliance, to try the pages (never on a production database).
    Demo {
        /// The partner's id.
        #[arg(long)]
        partner: i64,
        /// Sites to make (one appliance each).
        #[arg(long, default_value_t = 12)]
        sites: i64,
        /// Devices per site.
        #[arg(long, default_value_t = 40)]
        devices: i64,
    },
    /// Remote L2: appliances' keys and partners' daily budgets (`[l2]` in the configuration).
    L2 {
        #[command(subcommand)]
        command: L2Command,
    },
    /// Claim the appliance whose console shows CODE for a site.
    Claim {
        /// The site's id.
        #[arg(long)]
        site: i64,
        /// The claim code shown on the appliance's console (XXXX-XXXX-XXXX).
        code: String,
    },
}

#[derive(Debug, Subcommand)]
enum L2Command {
    /// Make an appliance's L2 key (printed once; only its SHA-256 is kept). The appliance keeps it
    /// in its vault and names it in `[l2] credential`.
    Key {
        /// The appliance's id (`osiris-central admin` pages list them).
        #[arg(long)]
        appliance: i64,
        /// Revoke every L2 key of the appliance instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Set a partner's daily L2 budget (instead of `[l2]`'s default for every partner).
    Budget {
        /// The partner's id (`admin partner list`).
        #[arg(long)]
        partner: i64,
        /// Tokens per UTC day (input and output).
        #[arg(long)]
        daily_tokens: u64,
        /// US dollars per UTC day, at most 6 decimals.
        #[arg(long)]
        daily_usd: f64,
    },
    /// What each partner spent on L2 per UTC day (the last 30 days).
    Usage,
}

#[derive(Debug, Subcommand)]
enum ReleaseCommand {
    /// Keep a vendor-signed manifest (checked against `[fleet] vendor_key`) for partners to roll
    /// out; a re-signed manifest of a kept version replaces it when its counter is higher.
    Add {
        /// The signed manifest JSON as the vendor published it.
        #[arg(long)]
        manifest: PathBuf,
    },
    /// The kept releases.
    List,
}

#[derive(Debug, Subcommand)]
enum AgentReleaseCommand {
    /// Keep a vendor-signed agent release document and its binary for partners to roll out
    /// (verified against `[fleet] agent_root` when it is set; the binary always against the
    /// document's size and SHA-256; downgrades and a changed binary under a kept version refused).
    Add {
        /// The signed release document (manifest JSON) as the vendor published it.
        #[arg(long)]
        manifest: PathBuf,
        /// The agent binary it names.
        #[arg(long)]
        binary: PathBuf,
    },
    /// The kept agent releases.
    List,
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Create a partner and its first administrator.
    Create {
        /// The partner's name, as its users will see it.
        name: String,
        /// The administrator's e-mail address (the login).
        #[arg(long)]
        admin: String,
        /// File holding the administrator's initial password (mode 0600), or `-` for stdin.
        #[arg(long)]
        password_file: PathBuf,
    },
    /// List partners.
    List,
}

/// A configuration that cannot be used: exit 78 (EX_CONFIG).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadConfig(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "osiris-central: error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            if err.downcast_ref::<BadConfig>().is_some() {
                ExitCode::from(78)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = match &cli.config {
        Some(path) => {
            central::config::Config::load(path).map_err(|err| BadConfig(err.to_string()))?
        }
        None => central::config::Config::default(),
    };
    match &cli.command {
        Command::Validate => {
            let path = cli
                .config
                .as_deref()
                .unwrap_or(Path::new("(built-in defaults)"));
            writeln!(std::io::stdout(), "{}: valid", path.display())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Link { command } => return link_command(&config, command),
        _ => {}
    }
    let env_url = std::env::var("DATABASE_URL").ok();
    let target = central::db::Target::resolve(&config, env_url.as_deref())
        .map_err(|err| BadConfig(err.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Validate | Command::Link { .. } => unreachable!("handled above"),
            Command::Bench {
                appliances,
                interval_secs,
                duration_secs,
                bundles_per_push,
            } => {
                let pool = target.connect(16).await?;
                central::db::migrate(&pool).await?;
                let scratch = tempfile_dir()?;
                let opts = central::bench::BenchOptions {
                    appliances,
                    interval: std::time::Duration::from_secs(interval_secs.max(1)),
                    duration: std::time::Duration::from_secs(duration_secs),
                    bundles_per_push,
                };
                let report = central::bench::run(&pool, &opts, &scratch).await;
                let _ = std::fs::remove_dir_all(&scratch);
                let report = report?;
                let (p50, p99, max) = report.latency_ms;
                let (polls, poll_failures, (q50, q99, qmax)) = report.polls;
                writeln!(
                    std::io::stdout(),
                    "witness judge (pure, 1 core)   {:.0} checkpoints/s\nwitness through PostgreSQL     {:.0} checkpoints/s sequential, {:.0} checkpoints/s with 16 appliances at once\nfleet                          {appliances} appliances, a push each {interval_secs} s for {duration_secs} s, {bundles_per_push} bundles per push\npushes                         {} ok, {} failed\npush-to-commit                 p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms\ndatabase growth                {:.0} bytes per push: {:.2} MiB per appliance per month at a push each {interval_secs} s\nstep polls (kits, release, agent releases, incident actions, channels)  {polls} ok, {poll_failures} failed; p50 {q50:.1} ms, p99 {q99:.1} ms, max {qmax:.1} ms for the five",
                    report.judge_per_sec,
                    report.stored_per_sec,
                    report.concurrent_per_sec,
                    report.pushes,
                    report.failures,
                    report.bytes_per_push,
                    report.growth_per_appliance_month / (1024.0 * 1024.0)
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Command::BenchPages {
                sites,
                devices,
                rounds,
            } => {
                let pool = target.connect(16).await?;
                central::db::migrate(&pool).await?;
                let opts = central::bench_pages::PagesOptions {
                    sites: sites.max(1),
                    devices: devices.max(1),
                    rounds: rounds.max(1),
                };
                let report = central::bench_pages::run(&pool, &opts).await?;
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "seeded {sites} sites, {} devices in {:.1} s\nstoring a {devices}-device snapshot (link push): p50 {:.1} ms, p99 {:.1} ms\n{:<34} {:>9} {:>9} {:>10}",
                    report.devices,
                    report.seed.as_secs_f64(),
                    report.snapshot_ms.0,
                    report.snapshot_ms.1,
                    "page",
                    "p50 ms",
                    "p99 ms",
                    "bytes"
                )?;
                for page in &report.pages {
                    writeln!(
                        out,
                        "{:<34} {:>9.1} {:>9.1} {:>10}",
                        page.page, page.p50_ms, page.p99_ms, page.bytes
                    )?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                writeln!(std::io::stdout(), "database {} is up to date", target.shown())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Serve { listen } => {
                let listen = listen.unwrap_or(config.listen);
                if config.tls.is_none() && !listen.ip().is_loopback() {
                    return Err(BadConfig(format!(
                        "listening on {listen} needs [tls] cert_file and key_file: plain HTTP is only for this machine"
                    ))
                    .into());
                }
                let link = config
                    .link
                    .as_ref()
                    .map(load_link_keys)
                    .transpose()
                    .map_err(|err| BadConfig(format!("{err:#}")))?;
                let tls = match &config.tls {
                    Some(tls) => Some(
                        central::server::tls_config(
                            &tls.cert_file,
                            &tls.key_file,
                            link.as_ref().map(|keys| keys.ca.cert_der()),
                        )
                        .map_err(|err| BadConfig(format!("{err:#}")))?,
                    ),
                    None => None,
                };
                let pool = target.connect_lazy(16);
                if let Err(err) = central::db::migrate(&pool).await {
                    // Start anyway: /healthz says 503 until the database is back.
                    tracing::warn!(error = %err, "could not migrate at start-up; serving with 503 until the database is reachable");
                }
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                let l2 = config
                    .l2
                    .as_ref()
                    .map(central::l2_relay::L2Relay::new)
                    .transpose()
                    .map_err(|err| BadConfig(err.to_string()))?;
                let state = central::server::AppState {
                    pool,
                    link: link.map(std::sync::Arc::new),
                    l2: l2.map(std::sync::Arc::new),
                };
                match tls {
                    Some(tls) => central::server::serve_tls(listener, state, tls, shutdown_signal())
                        .await
                        .context("serving")?,
                    None => central::server::serve_plain(listener, state, shutdown_signal())
                        .await
                        .context("serving")?,
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command: AdminCommand::Practice { partner, name },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                let actor = format!("cli:uid={}", current_uid());
                let id = central::admin::create_practice(&pool, partner, &name, &actor).await?;
                writeln!(std::io::stdout(), "created practice `{}` (id {id})", name.escape_debug())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command: AdminCommand::Site { practice, name },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                let actor = format!("cli:uid={}", current_uid());
                let id = central::admin::create_site(&pool, practice, &name, &actor).await?;
                writeln!(std::io::stdout(), "created site `{}` (id {id})", name.escape_debug())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command:
                    AdminCommand::User {
                        partner,
                        email,
                        role,
                        password_file,
                        practice,
                        expires_days,
                    },
            } => {
                let password = read_password(&password_file)?;
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                let actor = format!("cli:uid={}", current_uid());
                let id = central::admin::add_user(
                    &pool, partner, &email, &role, &password, practice, expires_days, &actor,
                )
                .await
                .with_context(|| format!("adding user {}", email.escape_debug()))?;
                writeln!(std::io::stdout(), "added {role} {} (user id {id})", email.to_lowercase())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command: AdminCommand::Claim { site, code },
            } => {
                let link = config.link.as_ref().ok_or_else(|| {
                    BadConfig("claiming needs [link] ca_dir and witness_key_file in the configuration".into())
                })?;
                let keys = load_link_keys(link).map_err(|err| BadConfig(format!("{err:#}")))?;
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                let partner: i64 = sqlx::query_scalar("SELECT partner_id FROM sites WHERE id = $1")
                    .bind(site)
                    .fetch_optional(&pool)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("site {site} does not exist"))?;
                let actor = format!("cli:uid={}", current_uid());
                let claimed = central::claim::claim_appliance(&pool, &keys.ca, partner, site, &code, &actor, None)
                    .await
                    .context("claiming the appliance")?;
                writeln!(
                    std::io::stdout(),
                    "claimed appliance {} (id {}) for site {site}; it collects its certificate on its next contact",
                    claimed.appliance_key, claimed.appliance_id
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command:
                    AdminCommand::Demo {
                        partner,
                        sites,
                        devices,
                    },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                let sizes = central::demo::Sizes {
                    sites: sites.clamp(1, 10_000),
                    devices: devices.clamp(1, 2_000),
                };
                central::demo::seed(&pool, partner, sizes)
                    .await
                    .context("adding demo data (a partner that exists and has no demo data yet)")?;
                writeln!(
                    std::io::stdout(),
                    "partner {partner}: {} demo sites with {} devices each",
                    sizes.sites, sizes.devices
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command: AdminCommand::Release { command },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                release(&config, &pool, command).await
            }
            Command::Admin {
                command: AdminCommand::AgentRelease { command },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                agent_release(&config, &pool, command).await
            }
            Command::Admin {
                command: AdminCommand::Partner { command },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                partner(&pool, command).await
            }
            Command::Admin {
                command: AdminCommand::L2 { command },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                l2_command(&pool, &command).await
            }
        }
    })
}

async fn partner(pool: &sqlx::PgPool, command: PartnerCommand) -> anyhow::Result<ExitCode> {
    match command {
        PartnerCommand::Create {
            name,
            admin,
            password_file,
        } => {
            let password = read_password(&password_file)?;
            let actor = format!("cli:uid={}", current_uid());
            let created = central::admin::create_partner(pool, &name, &admin, &password, &actor)
                .await
                .with_context(|| format!("creating partner `{}`", name.escape_debug()))?;
            writeln!(
                std::io::stdout(),
                "created partner `{}` (id {}) with administrator {} (user id {}); they must set up TOTP at first login",
                name.escape_debug(),
                created.partner_id,
                admin.to_lowercase(),
                created.admin_id
            )?;
        }
        PartnerCommand::List => {
            let mut out = std::io::stdout().lock();
            for row in central::admin::list_partners(pool).await? {
                writeln!(
                    out,
                    "{:>6}  {:<40}  {} users",
                    row.id,
                    row.name.escape_debug(),
                    row.users
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn l2_command(pool: &sqlx::PgPool, command: &L2Command) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let actor = format!("cli:uid={}", current_uid());
    match command {
        L2Command::Key {
            appliance,
            revoke: false,
        } => {
            let key = central::admin::create_l2_key(pool, *appliance, &actor).await?;
            writeln!(
                out,
                "L2 key for appliance {appliance} (shown once; on the appliance: `osiris credentials set central-l2` and `[l2] mode = \"remote\"`, `credential = \"central-l2\"`):\n{}",
                key.as_str()
            )?;
        }
        L2Command::Key {
            appliance,
            revoke: true,
        } => {
            let revoked = central::admin::revoke_l2_keys(pool, *appliance, &actor).await?;
            writeln!(out, "revoked {revoked} L2 key(s) of appliance {appliance}")?;
        }
        L2Command::Budget {
            partner,
            daily_tokens,
            daily_usd,
        } => {
            if !daily_usd.is_finite() || *daily_usd < 0.0 || *daily_usd > 1_000_000.0 {
                return Err(BadConfig(format!(
                    "--daily-usd {daily_usd} is not an amount between 0 and 1000000 US dollars"
                ))
                .into());
            }
            let micro = (daily_usd * 1_000_000.0).round() as u64;
            central::admin::set_l2_budget(pool, *partner, *daily_tokens, micro, &actor).await?;
            writeln!(
                out,
                "partner {partner}: {daily_tokens} tokens and {} a day for L2",
                l2::money_words(u128::from(micro) * 1_000_000)
            )?;
        }
        L2Command::Usage => {
            for row in central::admin::l2_usage(pool).await? {
                writeln!(
                    out,
                    "{}  partner {:>4} {:<30}  {:>9} tokens  {:>12}  {} requests, {} refused",
                    row.day,
                    row.partner_id,
                    row.partner.escape_debug(),
                    row.tokens,
                    l2::money_words(u128::try_from(row.pico_usd).unwrap_or(0)),
                    row.requests,
                    row.refused
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn link_command(
    config: &central::config::Config,
    command: &LinkCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        LinkCommand::Init {
            ca_dir,
            witness_key_file,
            witness_name,
        } => {
            let ca_dir = ca_dir
                .clone()
                .or_else(|| config.link.as_ref().map(|link| link.ca_dir.clone()))
                .ok_or_else(|| BadConfig("give --ca-dir or [link] ca_dir".into()))?;
            let key_file = witness_key_file
                .clone()
                .or_else(|| {
                    config
                        .link
                        .as_ref()
                        .map(|link| link.witness_key_file.clone())
                })
                .ok_or_else(|| {
                    BadConfig("give --witness-key-file or [link] witness_key_file".into())
                })?;
            if key_file.exists() {
                anyhow::bail!(
                    "{} already exists; the witness key is never replaced (auditors pin it)",
                    key_file.display()
                );
            }
            let mut seed = Zeroizing::new([0u8; 32]);
            getrandom::fill(seed.as_mut_slice())
                .context("reading the operating system's randomness")?;
            let witness = evidence::WitnessKey::from_seed(witness_name, &seed)
                .map_err(|err| BadConfig(format!("--witness-name: {err}")))?;
            central::link_ca::LinkCa::create(&ca_dir)
                .with_context(|| format!("creating the link CA in {}", ca_dir.display()))?;
            durable::write(&key_file, witness.private_key_text().as_bytes(), 0o600)
                .with_context(|| format!("saving the witness key to {}", key_file.display()))?;
            writeln!(
                std::io::stdout(),
                "link CA created in {}\nwitness key: {}",
                ca_dir.display(),
                witness.verifier()
            )?;
        }
        LinkCommand::WitnessKey => {
            let link = config
                .link
                .as_ref()
                .ok_or_else(|| BadConfig("this needs [link] in the configuration".into()))?;
            let keys = load_link_keys(link).map_err(|err| BadConfig(format!("{err:#}")))?;
            writeln!(std::io::stdout(), "{}", keys.witness.verifier())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The link CA and the witness key from their files.
fn load_link_keys(link: &central::config::Link) -> anyhow::Result<central::link::LinkKeys> {
    use std::os::unix::fs::PermissionsExt;
    let ca = central::link_ca::LinkCa::load(&link.ca_dir)
        .with_context(|| format!("loading the link CA from {}", link.ca_dir.display()))?;
    let path = &link.witness_key_file;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading the witness key {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "the witness key {} is readable by others (mode {mode:o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    );
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the witness key {}", path.display()))?,
    );
    let witness = text
        .parse()
        .with_context(|| format!("the witness key {}", path.display()))?;
    let channels = central::link::channel_key_from(&text);
    Ok(central::link::LinkKeys {
        ca,
        witness,
        channels,
    })
}

/// A password from a 0600 file or stdin (`-`), never from argv.
fn read_password(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut text = Zeroizing::new(String::new());
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from stdin")?;
    } else {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("reading password file {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "password file {} is readable by others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
        std::fs::File::open(path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .with_context(|| format!("reading password file {}", path.display()))?;
    }
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// A private scratch directory for the bench's keys.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).context("reading the operating system's randomness")?;
    let dir = std::env::temp_dir().join(format!("osiris-central-bench-{}", hex::encode(name)));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn release(
    config: &central::config::Config,
    pool: &sqlx::PgPool,
    command: ReleaseCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ReleaseCommand::Add { manifest } => {
            let vendor_key = config
                .fleet
                .as_ref()
                .and_then(|fleet| fleet.vendor_key.as_ref())
                .ok_or_else(|| {
                    BadConfig(
                        "adding releases needs [fleet] vendor_key (NAME:BASE64, the key the appliances pin) in the configuration".into(),
                    )
                })?;
            let bytes = std::fs::read(&manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            let actor = format!("cli:uid={}", current_uid());
            let version = central::fleet::add_release(
                pool,
                vendor_key,
                &bytes,
                &actor,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .with_context(|| format!("adding the release in {}", manifest.display()))?;
            writeln!(
                std::io::stdout(),
                "release {version} kept; partners offer it with POST /v1/releases/{{id}}/rollout"
            )?;
        }
        ReleaseCommand::List => {
            let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
                "SELECT id, version, counter, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM releases ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<6} {:<12} {:<8} EXPIRES",
                "ID", "VERSION", "COUNTER"
            )?;
            for (id, version, counter, expires) in rows {
                writeln!(out, "{id:<6} {version:<12} {counter:<8} {expires}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn agent_release(
    config: &central::config::Config,
    pool: &sqlx::PgPool,
    command: AgentReleaseCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        AgentReleaseCommand::Add { manifest, binary } => {
            let root = match config.fleet.as_ref().and_then(|f| f.agent_root.as_ref()) {
                Some(path) => {
                    let bytes = std::fs::read(path).with_context(|| {
                        format!("reading [fleet] agent_root {}", path.display())
                    })?;
                    Some(agent_release::TrustedRoot::pin(&bytes).map_err(|err| {
                        BadConfig(format!(
                            "fleet.agent_root {} is not a valid signed agent root: {err}; name the vendor's root file, the one the appliances name in [agents] release_root",
                            path.display()
                        ))
                    })?)
                }
                None => None,
            };
            let document = std::fs::read(&manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            let bytes =
                std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
            let actor = format!("cli:uid={}", current_uid());
            let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
            let added = central::agent_fleet::add_agent_release(
                pool,
                root.as_ref(),
                &document,
                &bytes,
                &actor,
                now,
            )
            .await
            .with_context(|| {
                format!(
                    "adding the agent release in {} with {}",
                    manifest.display(),
                    binary.display()
                )
            })?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "agent release {} {} kept as id {}; partners offer it with POST /v1/agent-releases/{}/rollout",
                added.platform, added.version, added.id, added.id
            )?;
            if !added.verified {
                writeln!(
                    out,
                    "note: [fleet] agent_root is not set, so only the binary was checked against the document; every appliance verifies the signatures against its own [agents] release_root"
                )?;
            }
        }
        AgentReleaseCommand::List => {
            let rows: Vec<(i64, String, String, i64, String, String)> = sqlx::query_as(
                "SELECT id, platform, version, size, encode(sha256, 'hex'), to_char(added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM agent_releases ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<6} {:<16} {:<10} {:<10} {:<64} ADDED",
                "ID", "PLATFORM", "VERSION", "SIZE", "SHA256"
            )?;
            for (id, platform, version, size, sha256, added) in rows {
                writeln!(
                    out,
                    "{id:<6} {platform:<16} {version:<10} {size:<10} {sha256:<64} {added}"
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |meta| meta.uid())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
