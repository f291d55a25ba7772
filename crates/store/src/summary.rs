//! The report summary (migration 0005): per UTC day, per device and check, pass/fail counts and
//! the newest result, and per day and kind the bundles' seq range; derived from the stored
//! bundles up to `report_summary_through`, filled in before each checkpoint and when a report
//! opens the store (never on the append path), rebuilt on request.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::LazyLock;

use futures_util::{Stream, StreamExt, TryStreamExt as _};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use crate::db::classify;
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

    /// The seq up to which the summary covers the log; bundles from it on are not summarised yet.
    pub async fn summary_through(self) -> Result<u64, StoreError> {
        let through: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'report_summary_through'")
                .fetch_optional(self.readers)
                .await
                .map_err(|err| classify(self.db_path, "reading the report summary", err))?;
        Ok(through.and_then(|t| t.parse().ok()).unwrap_or(0))
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

/// What a batch of bundles adds to the summary, aggregated in memory before it is written.
#[derive(Debug, Default)]
struct Delta {
    checks: BTreeMap<(String, bool, String, String), Newest>,
    bundles: BTreeMap<(String, String), Span>,
    /// The seq after the last bundle summarised.
    through: Option<u64>,
}

#[derive(Debug)]
struct Newest {
    passes: u32,
    fails: u32,
    status: String,
    observed: String,
    reason: String,
    at: String,
    seq: u64,
}

#[derive(Debug)]
struct Span {
    bundles: u64,
    first_seq: u64,
    last_seq: u64,
    first_at: String,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    body: &'a RawValue,
}

#[derive(Deserialize)]
struct ScanBody<'a> {
    #[serde(borrow)]
    target: Target<'a>,
    #[serde(borrow)]
    results: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Target<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ScanResult<'a> {
    #[serde(borrow)]
    check: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    observed: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reason: Cow<'a, str>,
}

#[derive(Deserialize)]
struct AgentBody<'a> {
    #[serde(borrow)]
    agent_id: Cow<'a, str>,
    #[serde(borrow)]
    check_id: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default)]
    facts: BTreeMap<String, String>,
}

/// The kinds the summary counts.
const KINDS: [&str; 2] = ["scan", "agent_result"];

impl Delta {
    /// Adds one stored bundle (bundles come in seq order). Other kinds, and bundles or results
    /// without the members the summary needs, are left out: the summary never stops an append.
    fn add(&mut self, seq: u64, kind: &str, line: &[u8]) {
        self.through = Some(seq + 1);
        if !KINDS.contains(&kind) {
            return;
        }
        let Ok(line) = serde_json::from_slice::<Line<'_>>(line) else {
            return;
        };
        let at = line.time.as_ref();
        let Some(day) = at.get(..10) else { return };
        match self.bundles.get_mut(&(day.to_owned(), kind.to_owned())) {
            Some(span) => {
                span.bundles += 1;
                span.last_seq = seq;
                if at < span.first_at.as_str() {
                    span.first_at = at.to_owned();
                }
            }
            None => {
                self.bundles.insert(
                    (day.to_owned(), kind.to_owned()),
                    Span {
                        bundles: 1,
                        first_seq: seq,
                        last_seq: seq,
                        first_at: at.to_owned(),
                    },
                );
            }
        }
        if kind == "scan" {
            let Ok(body) = serde_json::from_str::<ScanBody<'_>>(line.body.get()) else {
                return;
            };
            for result in body.results {
                let Ok(r) = serde_json::from_str::<ScanResult<'_>>(result.get()) else {
                    continue;
                };
                let observed = r.observed.map_or("null", RawValue::get);
                let key = (day, false, body.target.name.as_ref(), r.check.as_ref());
                self.record(key, &r.status, observed, &r.reason, at, seq);
            }
        } else if let Ok(body) = serde_json::from_str::<AgentBody<'_>>(line.body.get()) {
            let facts = serde_json::to_string(&body.facts).unwrap_or_default();
            let reason = format!("reported by endpoint agent {}", body.agent_id);
            let key = (day, true, body.agent_id.as_ref(), body.check_id.as_ref());
            self.record(key, &body.status, &facts, &reason, at, seq);
        }
    }

    fn record(
        &mut self,
        (day, agent, target, check): (&str, bool, &str, &str),
        status: &str,
        observed: &str,
        reason: &str,
        at: &str,
        seq: u64,
    ) {
        let (pass, fail) = (u32::from(status == "pass"), u32::from(status == "fail"));
        let key = (day.to_owned(), agent, target.to_owned(), check.to_owned());
        let slot = self.checks.entry(key).or_insert_with(|| Newest {
            passes: 0,
            fails: 0,
            status: String::new(),
            observed: String::new(),
            reason: String::new(),
            at: String::new(),
            seq,
        });
        slot.passes += pass;
        slot.fails += fail;
        // Text order is time order; a later seq wins a tie, as in the log.
        if at >= slot.at.as_str() {
            slot.status = status.to_owned();
            slot.observed = observed.to_owned();
            slot.reason = reason.to_owned();
            slot.at = at.to_owned();
            slot.seq = seq;
        }
    }
}

/// Rows per multi-row upsert (11 values per row, far below SQLite's variable limit).
const ROWS_PER_UPSERT: usize = 64;

static CHECK_UPSERT: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=ROWS_PER_UPSERT)
        .map(|n| {
            format!(
                "INSERT INTO check_days (day, source, target, check_id, passes, fails, status, observed, reason, at, seq) VALUES {} \
                 ON CONFLICT (day, source, target, check_id) DO UPDATE SET \
                 passes = passes + excluded.passes, fails = fails + excluded.fails, \
                 status = iif(excluded.at >= at, excluded.status, status), \
                 observed = iif(excluded.at >= at, excluded.observed, observed), \
                 reason = iif(excluded.at >= at, excluded.reason, reason), \
                 seq = iif(excluded.at >= at, excluded.seq, seq), \
                 at = max(at, excluded.at)",
                vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; n].join(", ")
            )
        })
        .collect()
});

static BUNDLE_UPSERT: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=ROWS_PER_UPSERT)
        .map(|n| {
            format!(
                "INSERT INTO bundle_days (day, kind, bundles, first_seq, last_seq, first_at) VALUES {} \
                 ON CONFLICT (day, kind) DO UPDATE SET bundles = bundles + excluded.bundles, \
                 first_seq = min(first_seq, excluded.first_seq), last_seq = max(last_seq, excluded.last_seq), \
                 first_at = min(first_at, excluded.first_at)",
                vec!["(?, ?, ?, ?, ?, ?)"; n].join(", ")
            )
        })
        .collect()
});

/// Writes a delta in the caller's transaction and moves `report_summary_through` past it.
async fn apply(conn: &mut SqliteConnection, delta: &Delta) -> Result<(), sqlx::Error> {
    let checks: Vec<_> = delta.checks.iter().collect();
    for chunk in checks.chunks(ROWS_PER_UPSERT) {
        let sql = CHECK_UPSERT.get(chunk.len() - 1).map_or("", String::as_str);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((day, agent, target, check), n) in chunk {
            query = query
                .bind(day.as_str())
                .bind(if *agent { "agent" } else { "scan" })
                .bind(target.as_str())
                .bind(check.as_str())
                .bind(i64::from(n.passes))
                .bind(i64::from(n.fails))
                .bind(n.status.as_str())
                .bind(n.observed.as_str())
                .bind(n.reason.as_str())
                .bind(n.at.as_str())
                .bind(to_i64(n.seq));
        }
        query.execute(&mut *conn).await?;
    }
    let bundles: Vec<_> = delta.bundles.iter().collect();
    for chunk in bundles.chunks(ROWS_PER_UPSERT) {
        let sql = BUNDLE_UPSERT
            .get(chunk.len() - 1)
            .map_or("", String::as_str);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((day, kind), span) in chunk {
            query = query
                .bind(day.as_str())
                .bind(kind.as_str())
                .bind(to_i64(span.bundles))
                .bind(to_i64(span.first_seq))
                .bind(to_i64(span.last_seq))
                .bind(span.first_at.as_str());
        }
        query.execute(&mut *conn).await?;
    }
    if let Some(through) = delta.through {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('report_summary_through', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(through.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Bundles read per transaction while filling in.
const FILL_CHUNK: u64 = 20_000;

/// Summarises the stored bundles the summary does not cover yet (all of them after migration
/// 0005 or a rebuild), a chunk per transaction; returns how many bundles it read.
pub(crate) async fn fill_in(
    conn: &mut SqliteConnection,
    db_path: &Path,
) -> Result<u64, StoreError> {
    let run = async {
        let through: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'report_summary_through'")
                .fetch_optional(&mut *conn)
                .await?;
        let mut start = through.and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM evidence")
            .fetch_one(&mut *conn)
            .await?;
        let size = u64::try_from(size).unwrap_or(0);
        let first = start;
        while start < size {
            let end = (start + FILL_CHUNK).min(size);
            let mut delta = Delta::default();
            let mut tx = conn.begin().await?;
            {
                let mut rows = sqlx::query(
                    "SELECT seq, kind, line FROM evidence WHERE seq >= ? AND seq < ? ORDER BY seq",
                )
                .bind(to_i64(start))
                .bind(to_i64(end))
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    let seq: i64 = row.try_get(0)?;
                    let kind: &str = row.try_get(1)?;
                    let line: &[u8] = row.try_get(2)?;
                    delta.add(u64::try_from(seq).unwrap_or(0), kind, line);
                }
            }
            delta.through = Some(end);
            apply(&mut tx, &delta).await?;
            tx.commit().await?;
            start = end;
        }
        Ok::<u64, sqlx::Error>(size.saturating_sub(first))
    };
    run.await
        .map_err(|err| classify(db_path, "filling in the report summary", err))
}

/// Empties the report summary and fills it again from the stored bundles.
pub(crate) async fn rebuild(conn: &mut SqliteConnection, db_path: &Path) -> Result<(), StoreError> {
    let empty = async {
        let mut tx = conn.begin().await?;
        for sql in [
            "DELETE FROM check_days",
            "DELETE FROM bundle_days",
            "DELETE FROM meta WHERE key = 'report_summary_through'",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await
    };
    empty
        .await
        .map_err(|err| classify(db_path, "emptying the report summary", err))?;
    fill_in(conn, db_path).await.map(|_| ())
}
