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
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Partners (the MSPs).
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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
    if let Command::Validate = cli.command {
        let path = cli
            .config
            .as_deref()
            .unwrap_or(Path::new("(built-in defaults)"));
        writeln!(std::io::stdout(), "{}: valid", path.display())?;
        return Ok(ExitCode::SUCCESS);
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
            Command::Validate => unreachable!("handled above"),
            Command::Migrate => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                writeln!(std::io::stdout(), "database {} is up to date", target.shown())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Serve { listen } => {
                let listen = listen.unwrap_or(config.listen);
                let pool = target.connect_lazy(16);
                if let Err(err) = central::db::migrate(&pool).await {
                    // Start anyway: /healthz says 503 until the database is back.
                    tracing::warn!(error = %err, "could not migrate at start-up; serving with 503 until the database is reachable");
                }
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                central::server::serve(
                    listener,
                    central::server::AppState { pool },
                    shutdown_signal(),
                )
                .await
                .context("serving")?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin {
                command: AdminCommand::Partner { command },
            } => {
                let pool = target.connect(2).await?;
                central::db::migrate(&pool).await?;
                partner(&pool, command).await
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
