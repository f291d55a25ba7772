//! The PostgreSQL side: where the connection comes from (environment or configuration plus a
//! 0600 password file), the pool, and the embedded migrations.

use std::borrow::Cow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use zeroize::Zeroizing;

use crate::config::{self, Config};

/// The migrations compiled into the binary (`crates/central/migrations`), in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tenancy", include_str!("../migrations/0001_tenancy.sql")),
    (
        2,
        "appliances",
        include_str!("../migrations/0002_appliances.sql"),
    ),
    (
        3,
        "sessions",
        include_str!("../migrations/0003_sessions.sql"),
    ),
    (4, "devices", include_str!("../migrations/0004_devices.sql")),
    (
        5,
        "incidents",
        include_str!("../migrations/0005_incidents.sql"),
    ),
    (6, "kits", include_str!("../migrations/0006_kits.sql")),
    (7, "fleet", include_str!("../migrations/0007_fleet.sql")),
    (
        8,
        "channels",
        include_str!("../migrations/0008_channels.sql"),
    ),
    (
        9,
        "email channels",
        include_str!("../migrations/0009_email_channels.sql"),
    ),
    (
        10,
        "incident actions",
        include_str!("../migrations/0010_incident_actions.sql"),
    ),
    (
        11,
        "dashboard",
        include_str!("../migrations/0011_dashboard.sql"),
    ),
    (
        12,
        "agent releases",
        include_str!("../migrations/0012_agent_releases.sql"),
    ),
    (13, "remote l2", include_str!("../migrations/0013_l2.sql")),
    (
        14,
        "packets",
        include_str!("../migrations/0014_packets.sql"),
    ),
];

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Where the database connection could not be made or prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// Neither `DATABASE_URL` nor `[database]` names a database.
    #[error(
        "no database: set DATABASE_URL in the environment (postgres://user:password@host/db) or [database] url in the configuration"
    )]
    NotConfigured,
    /// `DATABASE_URL` is not a PostgreSQL URL.
    #[error("DATABASE_URL: {0}")]
    BadEnvUrl(String),
    /// The password file is unreadable or too open.
    #[error("database.password_file {path}: {message}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Connecting failed (the URL is shown without its password).
    #[error(
        "cannot connect to the database at {url}; is PostgreSQL running and does it accept this user?"
    )]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migrating the database schema")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// How to reach the database, resolved from the environment and the configuration.
#[derive(Clone)]
pub struct Target {
    options: PgConnectOptions,
    shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("url", &self.shown).finish()
    }
}

impl Target {
    /// `DATABASE_URL` (sqlx's convention) wins over the configuration's `[database]`.
    pub fn resolve(config: &Config, env_url: Option<&str>) -> Result<Target, DbError> {
        if let Some(text) = env_url.filter(|text| !text.is_empty()) {
            let url = config::parse_database_url(text).map_err(DbError::BadEnvUrl)?;
            let options = PgConnectOptions::from_str(url.as_str())
                .map_err(|err| DbError::BadEnvUrl(format!("{} ({err})", config::redact(&url))))?;
            return Ok(Target {
                options,
                shown: config::redact(&url),
            });
        }
        let db = config.database.as_ref().ok_or(DbError::NotConfigured)?;
        let mut options = PgConnectOptions::from_str(db.url.as_str())
            .map_err(|err| DbError::BadEnvUrl(format!("{} ({err})", config::redact(&db.url))))?;
        if let Some(file) = &db.password_file {
            let password = read_password_file(file)?;
            options = options.password(&password);
        }
        Ok(Target {
            options,
            shown: config::redact(&db.url),
        })
    }

    /// The URL as it may be shown (password redacted).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A pool; the first connection is made now so a wrong address fails at start-up.
    pub async fn connect(&self, max_connections: u32) -> Result<PgPool, DbError> {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(self.options.clone())
            .await
            .map_err(|source| DbError::Connect {
                url: self.shown.clone(),
                source,
            })
    }

    /// A pool that connects on first use, for a server that must start (and answer `/healthz`
    /// with 503) while the database is down.
    pub fn connect_lazy(&self, max_connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(self.options.clone())
    }
}

/// Applies every embedded migration not applied yet; safe to run on every start and by several
/// instances at once (sqlx takes an advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    migrator().run(pool).await?;
    Ok(())
}

fn read_password_file(path: &Path) -> Result<Zeroizing<String>, DbError> {
    let err = |message: String| DbError::PasswordFile {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot be read ({e})")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err(format!(
            "is readable by others (mode {:o}); run `chmod 600 {}`",
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| err(format!("cannot be read ({e})")))?,
    );
    let password = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
    if password.is_empty() {
        return Err(err("is empty".to_owned()));
    }
    Ok(password)
}
