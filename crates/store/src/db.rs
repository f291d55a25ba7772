//! Opening the SQLite database: safety probes before any write, connection settings, migrations, metadata.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, SqlSafeStr};

use crate::StoreError;

/// The schema migrations embedded in this build, in version order.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "heal", include_str!("../migrations/0002_heal.sql")),
    (
        3,
        "cosignatures",
        include_str!("../migrations/0003_cosignatures.sql"),
    ),
    (4, "agents", include_str!("../migrations/0004_agents.sql")),
    (
        5,
        "report_summary",
        include_str!("../migrations/0005_report_summary.sql"),
    ),
];

/// The newest schema version this build knows.
pub(crate) fn known_schema_version() -> i64 {
    MIGRATIONS
        .iter()
        .map(|(version, _, _)| *version)
        .max()
        .unwrap_or(0)
}

/// Checks an existing database without writing to it: that it is SQLite, that no newer build wrote
/// to it, and that it belongs to `appliance_id`.
pub(crate) async fn probe_existing(path: &Path, appliance_id: &str) -> Result<(), StoreError> {
    let exists = std::fs::metadata(path)
        .map(|meta| meta.len() > 0)
        .unwrap_or(false);
    if !exists {
        return Ok(());
    }
    let options = base_options(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| classify(path, "opening it read-only to check it", err))?;
    if needs_crash_recovery(&mut conn).await {
        // A writer was killed mid-transaction (power loss during the very first start, while the
        // database was still being created): SQLite must roll its journal back before anyone can
        // read, and a read-only connection may not. Rolling back only completes the dead
        // writer's own transaction; nothing of ours is written before the checks below.
        let _ = conn.close().await;
        let mut recover = SqliteConnection::connect_with(&base_options(path))
            .await
            .map_err(|err| classify(path, "opening it to finish an interrupted write", err))?;
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&mut recover)
            .await
            .map_err(|err| classify(path, "finishing an interrupted write", err))?;
        let _ = recover.close().await;
        conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|err| classify(path, "opening it read-only to check it", err))?;
    }
    let res = probe_with(&mut conn, path, appliance_id).await;
    // Closing a read-only connection cannot lose data; a failure here is not worth reporting.
    let _ = conn.close().await;
    res
}

/// Whether a read on this read-only connection is refused because an interrupted write left a
/// hot journal or WAL to recover (`SQLITE_READONLY_ROLLBACK`, `SQLITE_READONLY_RECOVERY`).
async fn needs_crash_recovery(conn: &mut SqliteConnection) -> bool {
    const READONLY_RECOVERY: &str = "264";
    const READONLY_ROLLBACK: &str = "776";
    match sqlx::query("SELECT count(*) FROM sqlite_master")
        .execute(&mut *conn)
        .await
    {
        Err(sqlx::Error::Database(err)) => err
            .code()
            .is_some_and(|code| code == READONLY_ROLLBACK || code == READONLY_RECOVERY),
        _ => false,
    }
}

/// Opens the read-write connection used by the writer and applies the migrations.
pub(crate) async fn open_writer(path: &Path) -> Result<SqliteConnection, StoreError> {
    let options = base_options(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| classify(path, "opening it", err))?;
    migrator()
        .run(&mut conn)
        .await
        .map_err(|source| match source {
            sqlx::migrate::MigrateError::Execute(err) => classify(path, "migrating it", err),
            source => StoreError::Migrate {
                path: path.to_owned(),
                source,
            },
        })?;
    Ok(conn)
}

/// Opens the pool of read-only connections used for queries.
pub(crate) async fn open_readers(path: &Path) -> Result<SqlitePool, StoreError> {
    let options = base_options(path).read_only(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .connect_with(options)
        .await
        .map_err(|err| classify(path, "opening a reader", err))
}

/// Records `appliance_id` as the owner of a new database, or checks it against the recorded owner.
pub(crate) async fn claim(
    conn: &mut SqliteConnection,
    path: &Path,
    appliance_id: &str,
    site: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('appliance_id', ?)")
        .bind(appliance_id)
        .execute(&mut *conn)
        .await
        .map_err(|err| classify(path, "recording the appliance id", err))?;
    sqlx::query("INSERT INTO meta (key, value) VALUES ('site', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(site)
        .execute(&mut *conn)
        .await
        .map_err(|err| classify(path, "recording the site", err))?;
    check_owner(conn, path, appliance_id).await
}

/// Maps an SQLite error to [`StoreError`], recognising files that are not databases.
pub(crate) fn classify(path: &Path, action: &'static str, err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db_err) = &err {
        let code = db_err.code().and_then(|code| i64::from_str(&code).ok());
        // SQLITE_NOTADB is 26; extended codes keep the primary code in the low byte.
        if code.map(|code| code & 0xff) == Some(26) {
            return StoreError::NotADatabase {
                path: path.to_owned(),
            };
        }
    }
    StoreError::Database {
        path: path.to_owned(),
        action,
        source: err,
    }
}

fn base_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

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

async fn probe_with(
    conn: &mut SqliteConnection,
    path: &Path,
    appliance_id: &str,
) -> Result<(), StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('_sqlx_migrations', 'meta')",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|err| classify(path, "reading its schema", err))?;
    if tables.iter().any(|name| name == "_sqlx_migrations") {
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .map_err(|err| classify(path, "reading its schema version", err))?;
        let known = known_schema_version();
        if let Some(found) = found.filter(|found| *found > known) {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found,
                known,
            });
        }
    }
    if tables.iter().any(|name| name == "meta") {
        check_owner(conn, path, appliance_id).await?;
    }
    Ok(())
}

async fn check_owner(
    conn: &mut SqliteConnection,
    path: &Path,
    appliance_id: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = 'appliance_id'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(|err| classify(path, "reading the appliance id", err))?;
    let Some(row) = row else { return Ok(()) };
    let db_appliance: String = row
        .try_get(0)
        .map_err(|err| classify(path, "reading the appliance id", err))?;
    if db_appliance != appliance_id {
        return Err(StoreError::ForeignKey {
            key_appliance: appliance_id.to_owned(),
            db_appliance,
            path: PathBuf::from(path),
        });
    }
    Ok(())
}
