//! The queue's SQLite file: connection settings (and why a commit survives power loss), the schema, error classification, and reading the stored state back.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteLockingMode, SqliteSynchronous,
};
use sqlx::{Connection, Row, SqlSafeStr};

use crate::QueueError;

/// The schema migrations embedded in this build, in version order.
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "init", include_str!("../migrations/0001_init.sql"))];

/// SQLite's primary result codes that the queue tells apart (extended codes keep them in the low byte).
const SQLITE_BUSY: i64 = 5;
const SQLITE_FULL: i64 = 13;
const SQLITE_NOTADB: i64 = 26;

/// What the queue keeps in memory about the file, so a push needs no counting query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    /// The sequence number the next push gets.
    pub(crate) next_seq: u64,
    /// Everything up to here is acknowledged and gone.
    pub(crate) acked_through: u64,
    /// Items dropped over the queue's whole life.
    pub(crate) dropped: u64,
    /// Items queued.
    pub(crate) n_items: u64,
    /// Their payload bytes.
    pub(crate) n_bytes: u64,
    /// The oldest queued item's time (Unix nanoseconds), if any item is queued.
    pub(crate) front_at_ns: Option<i64>,
}

/// Opens (creating if missing) the queue file with the settings that make a returned commit
/// durable, takes it for this connection alone, and applies the migrations.
pub(crate) async fn open(path: &Path) -> Result<SqliteConnection, QueueError> {
    create_private(path).map_err(|source| QueueError::Create {
        path: path.to_owned(),
        source,
    })?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // EXCLUSIVE: the one connection keeps the file locked until it closes, so a second
        // queue on the same file (another process, or a second `Queue` here) fails at once
        // with `InUse` instead of corrupting the in-memory counters; in WAL mode it also keeps
        // the WAL index in this process's memory, so there is no `-shm` file.
        // A SIGKILLed process holds no lock: the kernel drops POSIX locks with the process.
        .locking_mode(SqliteLockingMode::Exclusive)
        // WAL: a commit appends to the `-wal` file; a crash at any point leaves either the
        // whole transaction or none of it (frames after the last commit frame are ignored at
        // recovery), which is the "never half-present" half of the contract.
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: in WAL mode SQLite fsyncs the WAL at every commit, so a push or an ack that
        // returned Ok is on stable storage and survives power loss. NORMAL syncs only at
        // checkpoints: still consistent, but the last commits before a power cut may roll back,
        // i.e. a push that returned Ok could be lost, which the contract forbids. SQLite also
        // fsyncs the directory when it creates the WAL file, so the file itself survives.
        .synchronous(SqliteSynchronous::Full)
        // No waiting: the only other holder of the lock can be another queue on the same file.
        .busy_timeout(Duration::ZERO);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| classify(path, "opening it", err))?;
    migrator()
        .run(&mut conn)
        .await
        .map_err(|source| match source {
            sqlx::migrate::MigrateError::Execute(err) => classify(path, "migrating it", err),
            source => QueueError::Migrate {
                path: path.to_owned(),
                source,
            },
        })?;
    Ok(conn)
}

/// Maps an SQLite error to [`QueueError`], recognising a locked file and a file that is not a database.
pub(crate) fn classify(path: &Path, action: &'static str, err: sqlx::Error) -> QueueError {
    match primary_code(&err) {
        Some(SQLITE_BUSY) => QueueError::InUse {
            path: path.to_owned(),
        },
        Some(SQLITE_NOTADB) => QueueError::NotADatabase {
            path: path.to_owned(),
        },
        _ => QueueError::Database {
            path: path.to_owned(),
            action,
            source: err,
        },
    }
}

/// Whether SQLite refused a write for lack of space (`SQLITE_FULL`: the disk is full, `ENOSPC`,
/// or the file reached its `max_page_count`).
pub(crate) fn is_full(err: &sqlx::Error) -> bool {
    primary_code(err) == Some(SQLITE_FULL)
}

/// Reads the counters and the queue's extent, checking that they agree with each other.
pub(crate) async fn load_state(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<State, QueueError> {
    let action = "reading its state";
    let counters =
        sqlx::query("SELECT next_seq, acked_through, dropped FROM counters WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|err| classify(path, action, err))?;
    let Some(counters) = counters else {
        return Err(corrupt(path, "the counters row is missing"));
    };
    let items = sqlx::query(
        "SELECT count(*), coalesce(sum(length(payload)), 0), min(seq), max(seq) FROM items",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|err| classify(path, action, err))?;
    let gaps =
        sqlx::query("SELECT min(first), max(last), coalesce(sum(last - first + 1), 0) FROM gaps")
            .fetch_one(&mut *conn)
            .await
            .map_err(|err| classify(path, action, err))?;
    let front_at_ns = front_at_ns(conn, path).await?;

    let get = |row: &sqlx::sqlite::SqliteRow, idx: usize| -> Result<Option<u64>, QueueError> {
        let value: Option<i64> = row
            .try_get(idx)
            .map_err(|err| classify(path, action, err))?;
        value
            .map(|value| {
                u64::try_from(value).map_err(|_| corrupt(path, &format!("negative value {value}")))
            })
            .transpose()
    };
    let required = |value: Option<u64>| value.ok_or_else(|| corrupt(path, "a counter is NULL"));
    let state = State {
        next_seq: required(get(&counters, 0)?)?,
        acked_through: required(get(&counters, 1)?)?,
        dropped: required(get(&counters, 2)?)?,
        n_items: required(get(&items, 0)?)?,
        n_bytes: required(get(&items, 1)?)?,
        front_at_ns,
    };
    let items_span = get(&items, 2)?.zip(get(&items, 3)?);
    let gaps_span = get(&gaps, 0)?.zip(get(&gaps, 1)?);
    let gap_seqs = required(get(&gaps, 2)?)?;
    check_extent(&state, items_span, gaps_span, gap_seqs)
        .map_err(|detail| corrupt(path, &detail))?;
    Ok(state)
}

/// The time of the oldest queued item, if any.
pub(crate) async fn front_at_ns(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<Option<i64>, QueueError> {
    sqlx::query_scalar("SELECT at_ns FROM items ORDER BY seq LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(|err| classify(path, "reading the oldest item", err))
}

/// Checks the invariants between the counters, the items' span and the gaps' span: everything
/// queued lies after `acked_through` and before `next_seq`, the items are consecutive, the gaps
/// precede them, and items and gaps (`gap_seqs` sequence numbers) account for every sequence
/// number in between.
fn check_extent(
    state: &State,
    items: Option<(u64, u64)>,
    gaps: Option<(u64, u64)>,
    gap_seqs: u64,
) -> Result<(), String> {
    let State {
        next_seq,
        acked_through,
        ..
    } = *state;
    if let Some((first, last)) = items {
        if first <= acked_through || last >= next_seq {
            return Err(format!(
                "items {first}..={last} lie outside the unacknowledged range {}..{next_seq}",
                acked_through + 1
            ));
        }
        if last - first + 1 != state.n_items {
            return Err(format!(
                "items {first}..={last} are not consecutive ({} items)",
                state.n_items
            ));
        }
    }
    if let Some((first, last)) = gaps {
        if first <= acked_through {
            return Err(format!(
                "gaps start at seq {first}, which is acknowledged (up to {acked_through})"
            ));
        }
        let (end, what) = items.map_or((next_seq, "the next seq"), |(items_first, _)| {
            (items_first, "the first item")
        });
        if last >= end {
            return Err(format!("gaps end at seq {last}, not before {what} ({end})"));
        }
    }
    let unacked = next_seq - 1 - acked_through;
    if state.n_items + gap_seqs != unacked {
        return Err(format!(
            "{} items and {gap_seqs} dropped sequence numbers do not account for the {unacked} unacknowledged ones",
            state.n_items
        ));
    }
    Ok(())
}

/// Creates a missing queue file readable by its owner only: SQLite would create it with 0644
/// (less the umask), and it gives the `-wal` file the database file's mode. An empty file is an
/// empty database to SQLite.
#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;

    let res = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match res {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// On Windows the agent's data directory's ACL protects the file.
#[cfg(not(unix))]
fn create_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

fn corrupt(path: &Path, detail: &str) -> QueueError {
    QueueError::Corrupt {
        path: path.to_owned(),
        detail: detail.to_owned(),
    }
}

fn primary_code(err: &sqlx::Error) -> Option<i64> {
    let sqlx::Error::Database(db_err) = err else {
        return None;
    };
    let code = db_err.code().and_then(|code| i64::from_str(&code).ok())?;
    Some(code & 0xff)
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
