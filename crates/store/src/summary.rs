//! The report summary (migration 0005): per UTC day, per device and check, pass/fail counts and
//! the newest result, and per day and kind the bundles' seq range; derived from the log by
//! triggers in the transaction that stores each bundle, and rebuilt from it on request.

use std::ops::Range;
use std::path::Path;

use futures_util::{Stream, StreamExt};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::db::{REPORT_SUMMARY_FILL, classify};
use crate::{StoreError, StoredCheckpoint, checkpoint_from_row, to_i64};

/// One check on one device on one UTC day: its counts and its newest result that day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// From an endpoint agent (`target` is then the agent id), else from a scan.
    pub agent: bool,
    pub target: String,
    pub check: String,
    pub passes: u32,
    pub fails: u32,
    /// The newest result's status as the bundle says it (`pass`, `fail`, …).
    pub status: String,
    /// What it observed, as compact JSON.
    pub observed: String,
    pub reason: String,
    /// The newest result's bundle time (RFC 3339 UTC).
    pub at: String,
    /// The bundle that holds the newest result.
    pub seq: u64,
}

/// The bundles of one kind (`scan` or `agent_result`) sealed on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub kind: String,
    pub bundles: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The earliest bundle time of the day (RFC 3339 UTC).
    pub first_at: String,
}

/// What reports read from the database, the same for the store's owner and a read-only view.
#[derive(Debug, Clone, Copy)]
pub struct LogReads<'a> {
    pub(crate) readers: &'a SqlitePool,
    pub(crate) db_path: &'a Path,
}

impl<'a> LogReads<'a> {
    /// Streams `(seq, line)` of the bundles whose kind is one of `kinds`, with seq in `range`, in
    /// seq order; nothing else of a row is read.
    pub fn lines_of_kinds(
        self,
        range: Range<u64>,
        kinds: &[&str],
    ) -> impl Stream<Item = Result<(u64, Vec<u8>), StoreError>> + Send + 'a {
        let kinds = serde_json::Value::from(kinds.to_vec()).to_string();
        let db_path = self.db_path;
        sqlx::query(LINES_OF_KINDS)
            .bind(to_i64(range.start))
            .bind(to_i64(range.end))
            .bind(kinds)
            .fetch(self.readers)
            .map(move |row| {
                let read = |err| classify(db_path, "reading entries", err);
                let row = row.map_err(read)?;
                let seq: i64 = row.try_get(0).map_err(read)?;
                let line: Vec<u8> = row.try_get(1).map_err(read)?;
                Ok((u64::try_from(seq).unwrap_or_default(), line))
            })
    }

    /// Streams the summary rows of the days `from..to` (`YYYY-MM-DD`, `to` excluded).
    pub fn check_days(
        self,
        from: &str,
        to: &str,
    ) -> impl Stream<Item = Result<CheckDay, StoreError>> + Send + 'a {
        let db_path = self.db_path;
        sqlx::query(
            "SELECT day, source, target, check_id, passes, fails, status, observed, reason, at, seq \
             FROM check_days WHERE day >= ? AND day < ? ORDER BY day",
        )
        .bind(from.to_owned())
        .bind(to.to_owned())
        .fetch(self.readers)
        .map(move |row| {
            row.map_err(|err| classify(db_path, "reading the report summary", err))
                .and_then(|row| check_day(db_path, &row))
        })
    }

    /// Every day's bundle counts and seq ranges, oldest day first.
    pub async fn bundle_days(self) -> Result<Vec<BundleDay>, StoreError> {
        let read = |err| classify(self.db_path, "reading the report summary", err);
        let rows = sqlx::query(
            "SELECT day, kind, bundles, first_seq, last_seq, first_at FROM bundle_days ORDER BY day, kind",
        )
        .fetch_all(self.readers)
        .await
        .map_err(read)?;
        rows.iter()
            .map(|row| {
                let number = |i: usize| -> Result<u64, StoreError> {
                    let n: i64 = row.try_get(i).map_err(read)?;
                    Ok(u64::try_from(n).unwrap_or_default())
                };
                Ok(BundleDay {
                    day: row.try_get(0).map_err(read)?,
                    kind: row.try_get(1).map_err(read)?,
                    bundles: number(2)?,
                    first_seq: number(3)?,
                    last_seq: number(4)?,
                    first_at: row.try_get(5).map_err(read)?,
                })
            })
            .collect()
    }

    /// The newest stored checkpoint.
    pub async fn latest_checkpoint(self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT size, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(self.readers)
        .await
        .map_err(|err| classify(self.db_path, "reading checkpoints", err))?;
        row.map(|row| checkpoint_from_row(self.db_path, &row))
            .transpose()
    }
}

const LINES_OF_KINDS: &str = "SELECT seq, line FROM evidence WHERE seq >= ? AND seq < ? AND kind IN (SELECT value FROM json_each(?)) ORDER BY seq";

fn check_day(db_path: &Path, row: &SqliteRow) -> Result<CheckDay, StoreError> {
    let read = |err| classify(db_path, "reading the report summary", err);
    let count = |i: usize| -> Result<u32, StoreError> {
        let n: i64 = row.try_get(i).map_err(read)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    };
    let seq: i64 = row.try_get(10).map_err(read)?;
    Ok(CheckDay {
        day: row.try_get(0).map_err(read)?,
        agent: row.try_get::<&str, _>(1).map_err(read)? == "agent",
        target: row.try_get(2).map_err(read)?,
        check: row.try_get(3).map_err(read)?,
        passes: count(4)?,
        fails: count(5)?,
        status: row.try_get(6).map_err(read)?,
        observed: row.try_get(7).map_err(read)?,
        reason: row.try_get(8).map_err(read)?,
        at: row.try_get(9).map_err(read)?,
        seq: u64::try_from(seq).unwrap_or_default(),
    })
}

/// Empties the report summary and fills it again from the stored bundles, in one transaction.
pub(crate) async fn rebuild(conn: &mut SqliteConnection, db_path: &Path) -> Result<(), StoreError> {
    let run = async {
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM check_days")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM bundle_days")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(REPORT_SUMMARY_FILL))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    };
    run.await
        .map_err(|err| classify(db_path, "rebuilding the report summary", err))
}
