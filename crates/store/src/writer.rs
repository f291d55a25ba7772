//! The single writer task: owns the `LogWriter` and the write connection, seals queued drafts and group-commits them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use evidence::keys::ApplianceKey;
use evidence::log::{Entry, LogWriter, PreparedDraft};
use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::sync::{mpsc, oneshot, watch};

use crate::agents::{Effect, TokenOp, TokenRefusal};
use crate::db::classify;
use crate::error::with_causes;
use crate::{Appended, HealAttempt, OtsUpdate, StoreError, StoredCheckpoint};

/// The most drafts sealed and committed in one transaction.
pub(crate) const MAX_BATCH: usize = 4096;

/// Batches up to this many drafts are signed on the writer task itself.
const INLINE_SEAL_MAX: usize = 16;

/// A message to the writer task.
pub(crate) enum Request {
    /// Seal and store drafts; acknowledged after the commit.
    Append {
        drafts: Vec<Prepared>,
        /// Registry changes committed in the same transaction.
        effects: Vec<Effect>,
        ack: AppendAck,
    },
    /// Sign and store a checkpoint of the current tree (or return the stored one for this size).
    Checkpoint {
        ack: oneshot::Sender<Result<StoredCheckpoint, StoreError>>,
    },
    /// An RFC 9162 inclusion proof from the in-memory tree.
    Inclusion {
        seq: u64,
        size: u64,
        ack: oneshot::Sender<Result<Vec<[u8; 32]>, StoreError>>,
    },
    /// An RFC 9162 consistency proof from the in-memory tree.
    Consistency {
        old: u64,
        new: u64,
        ack: oneshot::Sender<Result<Vec<[u8; 32]>, StoreError>>,
    },
    /// The tree's size and root hash.
    Root {
        ack: oneshot::Sender<(u64, [u8; 32])>,
    },
    /// Insert or replace an OpenTimestamps proof.
    PutOts {
        update: OtsUpdate,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Keep a witness's cosignature of a stored checkpoint.
    PutCosignature {
        size: u64,
        witness: String,
        line: String,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Take one use of an enrollment token.
    TakeAgentToken {
        hash: [u8; 32],
        now: i64,
        ack: oneshot::Sender<Result<Result<String, TokenRefusal>, StoreError>>,
    },
    /// Change the agent registry without a bundle.
    AgentToken {
        op: TokenOp,
        ack: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Empty the report summary and fill it again from the log.
    RebuildSummary {
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Record one L1 remediation attempt.
    RecordHeal {
        attempt: HealAttempt,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Where the writer answers an append.
pub(crate) type AppendAck = oneshot::Sender<Result<Vec<Appended>, StoreError>>;

/// One queued append: its drafts, the registry changes that go with them, and where to answer.
pub(crate) type QueuedAppend = (Vec<Prepared>, Vec<Effect>, AppendAck);

/// A draft canonicalised by the caller, ready to be chained and signed.
pub(crate) struct Prepared {
    pub(crate) draft: PreparedDraft,
    pub(crate) kind: String,
}

/// What readers see of the log without asking the writer: committed size and last line hash.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Head {
    pub(crate) size: u64,
    pub(crate) last_line_hash: Option<[u8; 32]>,
}

/// The writer task's state.
pub(crate) struct Writer {
    pub(crate) conn: SqliteConnection,
    pub(crate) log: Option<LogWriter>,
    pub(crate) db_path: PathBuf,
    pub(crate) key: ApplianceKey,
    pub(crate) head: watch::Sender<Head>,
}

/// Reads the log's leaf hashes and last line hash from the database and rebuilds the `LogWriter`.
pub(crate) async fn load_log(
    conn: &mut SqliteConnection,
    db_path: &Path,
    key: ApplianceKey,
) -> Result<(LogWriter, Head), StoreError> {
    let leaf_hashes = load_leaf_hashes(conn, db_path).await?;
    let last_line_hash = match leaf_hashes.len() {
        0 => None,
        size => {
            let seq = size as i64 - 1;
            let hash: Vec<u8> = sqlx::query_scalar("SELECT line_hash FROM evidence WHERE seq = ?")
                .bind(seq)
                .fetch_one(&mut *conn)
                .await
                .map_err(|err| classify(db_path, "reading the last line hash", err))?;
            Some(hash_32(db_path, "line_hash", seq, &hash)?)
        }
    };
    let size = leaf_hashes.len() as u64;
    let log = LogWriter::resume_from_hashes(
        key,
        leaf_hashes.into_iter(),
        last_line_hash.unwrap_or([0; 32]),
    );
    Ok((
        log,
        Head {
            size,
            last_line_hash,
        },
    ))
}

/// Leaf hashes fetched per query when resuming; one row per chunk keeps a 1M-row open fast.
const RESUME_CHUNK: i64 = 8192;

/// Reads every leaf hash in seq order, checking that seqs run contiguously from 0.
async fn load_leaf_hashes(
    conn: &mut SqliteConnection,
    db_path: &Path,
) -> Result<Vec<[u8; 32]>, StoreError> {
    let read = |err| classify(db_path, "reading the evidence log", err);
    let corrupt = |detail: String| StoreError::Corrupt {
        path: db_path.to_owned(),
        detail,
    };
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM evidence")
        .fetch_one(&mut *conn)
        .await
        .map_err(read)?;
    let mut leaf_hashes: Vec<[u8; 32]> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut start = 0i64;
    while start < total {
        // Concatenating a chunk's hashes in SQLite avoids a round trip per row.
        let row = sqlx::query(
            "SELECT COUNT(*), MIN(seq), MAX(seq), CAST(group_concat(leaf_hash, '' ORDER BY seq) AS BLOB) \
             FROM evidence WHERE seq >= ? AND seq < ?",
        )
        .bind(start)
        .bind(start + RESUME_CHUNK)
        .fetch_one(&mut *conn)
        .await
        .map_err(read)?;
        let count: i64 = row.try_get(0).map_err(read)?;
        let min: Option<i64> = row.try_get(1).map_err(read)?;
        let max: Option<i64> = row.try_get(2).map_err(read)?;
        let hashes: Option<Vec<u8>> = row.try_get(3).map_err(read)?;
        let expected = RESUME_CHUNK.min(total - start);
        if count != expected || min != Some(start) || max != Some(start + count - 1) {
            return Err(corrupt(format!(
                "evidence seqs are not contiguous from 0 (between {start} and {})",
                start + RESUME_CHUNK - 1
            )));
        }
        let hashes = hashes.unwrap_or_default();
        let (chunks, rest) = hashes.as_chunks::<32>();
        if chunks.len() as i64 != count || !rest.is_empty() {
            return Err(corrupt(format!(
                "a leaf_hash between seq {start} and {} is not 32 bytes long",
                start + count - 1
            )));
        }
        leaf_hashes.extend_from_slice(chunks);
        start += count;
    }
    Ok(leaf_hashes)
}

impl Writer {
    /// Serves requests until every sender is dropped or the log cannot be rebuilt after a failure.
    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut carried: Option<Request> = None;
        loop {
            let first = match carried.take() {
                Some(request) => request,
                None => match requests.recv().await {
                    Some(request) => request,
                    None => break,
                },
            };
            let mut appends = Vec::new();
            let mut n_drafts = 0;
            match first {
                Request::Append {
                    drafts,
                    effects,
                    ack,
                } => {
                    n_drafts += drafts.len();
                    appends.push((drafts, effects, ack));
                    while n_drafts < MAX_BATCH {
                        match requests.try_recv() {
                            Ok(Request::Append {
                                drafts,
                                effects,
                                ack,
                            }) => {
                                n_drafts += drafts.len();
                                appends.push((drafts, effects, ack));
                            }
                            Ok(other) => {
                                carried = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append(appends).await;
                }
                other => self.control(other).await,
            }
            if self.log.is_none() {
                tracing::error!(path = %self.db_path.display(), "Evidence writer stopped.");
                break;
            }
        }
        // Closing flushes nothing that matters (every commit is already durable), so errors are only logged.
        if let Err(err) = self.conn.close().await {
            tracing::warn!(error = %err, "Closing the evidence database failed.");
        }
    }

    async fn append(&mut self, appends: Vec<QueuedAppend>) {
        let Some(log) = self.log.take() else {
            return fail_all(appends, StoreError::WriterStopped);
        };
        let n_drafts: usize = appends.iter().map(|(drafts, _, _)| drafts.len()).sum();
        let seal = move || {
            let mut log = log;
            let sealed: Vec<Vec<Entry>> = appends
                .iter()
                .map(|(drafts, _, _)| {
                    drafts
                        .iter()
                        .map(|draft| log.seal_prepared(&draft.draft))
                        .collect()
                })
                .collect();
            (log, appends, sealed)
        };
        // Signing a few bundles takes well under a millisecond; larger batches are signed on a
        // blocking thread so they do not stall the runtime.
        let job = if n_drafts <= INLINE_SEAL_MAX {
            Ok(seal())
        } else {
            tokio::task::spawn_blocking(seal).await
        };
        let (log, appends, sealed) = match job {
            Ok(res) => res,
            Err(err) => {
                // The appends moved into the panicked thread; their senders dropped, so waiters see WriterStopped.
                tracing::error!(error = %err, "Sealing thread failed.");
                self.rebuild().await;
                return;
            }
        };
        self.log = Some(log);
        let created_at = now_rfc3339();
        let commit = insert_all(&mut self.conn, &appends, &sealed, &created_at).await;
        if let Err(err) = commit.map_err(|err| classify(&self.db_path, "committing evidence", err))
        {
            tracing::error!(error = %with_causes(&err), n_bundles = sealed.len(), "Evidence commit failed.");
            // Forget every seal of this batch: the tree and chain head must match what is committed.
            self.rebuild().await;
            return fail_all(appends, err);
        }
        if let Some(last) = sealed.iter().flatten().last() {
            self.head.send_replace(Head {
                size: last.seq + 1,
                last_line_hash: Some(last.line_hash),
            });
        }
        for ((_, _, ack), entries) in appends.into_iter().zip(sealed) {
            let acked = entries
                .iter()
                .map(|entry| Appended {
                    seq: entry.seq,
                    line_hash: entry.line_hash,
                })
                .collect();
            // A caller that stopped waiting still has its bundle stored; nothing to do.
            let _ = ack.send(Ok(acked));
        }
    }

    async fn control(&mut self, request: Request) {
        let Some(log) = self.log.as_mut() else { return };
        match request {
            Request::Append { .. } => {}
            Request::Checkpoint { ack } => {
                // The report summary catches up with the log at every checkpoint (off the append
                // path); readers take bundles it does not cover yet from the log itself.
                if let Err(err) = crate::summary::fill_in(&mut self.conn, &self.db_path).await {
                    tracing::warn!(error = %with_causes(&err), "Report summary not filled in.");
                }
                let res = checkpoint(&mut self.conn, &self.db_path, log).await;
                let _ = ack.send(res);
            }
            Request::Inclusion { seq, size, ack } => {
                let tree = log.tree();
                let res = if seq >= size {
                    Err(StoreError::OutOfRange {
                        what: format!("entry {seq} of a tree of size {size}"),
                        size: tree.len(),
                    })
                } else {
                    tree.inclusion_proof(seq, size)
                        .ok_or_else(|| StoreError::OutOfRange {
                            what: format!("tree size {size}"),
                            size: tree.len(),
                        })
                };
                let _ = ack.send(res);
            }
            Request::Consistency { old, new, ack } => {
                let tree = log.tree();
                let res = tree
                    .consistency_proof(old, new)
                    .ok_or_else(|| StoreError::OutOfRange {
                        what: format!("consistency from size {old} to size {new}"),
                        size: tree.len(),
                    });
                let _ = ack.send(res);
            }
            Request::Root { ack } => {
                let tree = log.tree();
                let _ = ack.send((tree.len(), tree.root()));
            }
            Request::PutOts { update, ack } => {
                let res = put_ots(&mut self.conn, &self.db_path, update).await;
                let _ = ack.send(res);
            }
            Request::PutCosignature {
                size,
                witness,
                line,
                ack,
            } => {
                let res =
                    put_cosignature(&mut self.conn, &self.db_path, size, &witness, &line).await;
                let _ = ack.send(res);
            }
            Request::TakeAgentToken { hash, now, ack } => {
                let res =
                    crate::agents::take_token(&mut self.conn, &self.db_path, &hash, now).await;
                let _ = ack.send(res);
            }
            Request::AgentToken { op, ack } => {
                let res = crate::agents::token_op(&mut self.conn, &self.db_path, op).await;
                let _ = ack.send(res);
            }
            Request::RebuildSummary { ack } => {
                let _ = ack.send(crate::summary::rebuild(&mut self.conn, &self.db_path).await);
            }
            Request::RecordHeal { attempt, ack } => {
                let res = sqlx::query(
                    "INSERT INTO heal_attempts (rule, target, check_id, at, result, evidence_seq) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&attempt.rule)
                .bind(&attempt.target)
                .bind(&attempt.check)
                .bind(attempt.at)
                .bind(if attempt.verified { "verified" } else { "failed" })
                .bind(attempt.evidence_seq.map(|seq| seq as i64))
                .execute(&mut self.conn)
                .await
                .map(|_| ())
                .map_err(|err| classify(&self.db_path, "recording a heal attempt", err));
                let _ = ack.send(res);
            }
        }
    }

    /// Rebuilds the `LogWriter` from what is committed; leaves `self.log` empty when that fails.
    async fn rebuild(&mut self) {
        self.log = None;
        match load_log(&mut self.conn, &self.db_path, self.key.clone()).await {
            Ok((log, head)) => {
                self.log = Some(log);
                self.head.send_replace(head);
            }
            Err(err) => {
                tracing::error!(error = %with_causes(&err), "Rebuilding the evidence log from the database failed.")
            }
        }
    }
}

/// Returns the current UTC time as RFC 3339 with millisecond precision.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Rows per multi-row INSERT; SQLite binds 6 values per row, well under its variable limit.
const ROWS_PER_INSERT: usize = 64;

/// `INSERT_SQL[n - 1]` inserts `n` rows; each text is one cached prepared statement.
static INSERT_SQL: LazyLock<Vec<String>> =
    LazyLock::new(|| (1..=ROWS_PER_INSERT).map(insert_sql).collect());

fn insert_sql(n_rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?)"; n_rows].join(", ");
    format!(
        "INSERT INTO evidence (seq, line, leaf_hash, line_hash, kind, created_at) VALUES {values}"
    )
}

async fn insert_all(
    conn: &mut SqliteConnection,
    appends: &[QueuedAppend],
    sealed: &[Vec<Entry>],
    created_at: &str,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(&Entry, &str)> = appends
        .iter()
        .zip(sealed)
        .flat_map(|((drafts, _, _), entries)| {
            entries
                .iter()
                .zip(drafts)
                .map(|(entry, prepared)| (entry, prepared.kind.as_str()))
        })
        .collect();
    let mut tx = conn.begin().await?;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = INSERT_SQL.get(chunk.len() - 1).map_or("", String::as_str);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (entry, kind) in chunk {
            query = bind_row(query, entry, kind, created_at);
        }
        query.execute(&mut *tx).await?;
    }
    for ((_, effects, _), entries) in appends.iter().zip(sealed) {
        if !effects.is_empty() {
            let seqs: Vec<u64> = entries.iter().map(|entry| entry.seq).collect();
            crate::agents::apply(&mut tx, effects, &seqs).await?;
        }
    }
    tx.commit().await
}

fn bind_row<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    entry: &'q Entry,
    kind: &'q str,
    created_at: &'q str,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    query
        .bind(entry.seq as i64)
        .bind(entry.line.as_slice())
        .bind(entry.leaf_hash.as_slice())
        .bind(entry.line_hash.as_slice())
        .bind(kind)
        .bind(created_at)
}

async fn checkpoint(
    conn: &mut SqliteConnection,
    db_path: &Path,
    log: &mut LogWriter,
) -> Result<StoredCheckpoint, StoreError> {
    let size = log.size();
    let existing = sqlx::query("SELECT size, note, created_at FROM checkpoints WHERE size = ?")
        .bind(size as i64)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|err| classify(db_path, "reading checkpoints", err))?;
    if let Some(row) = existing {
        return crate::checkpoint_from_row(db_path, &row);
    }
    let (_, note) = log.checkpoint();
    let created_at = now_rfc3339();
    sqlx::query("INSERT INTO checkpoints (size, note, created_at) VALUES (?, ?, ?)")
        .bind(size as i64)
        .bind(&note)
        .bind(&created_at)
        .execute(&mut *conn)
        .await
        .map_err(|err| classify(db_path, "storing a checkpoint", err))?;
    Ok(StoredCheckpoint {
        size,
        note,
        created_at,
    })
}

async fn put_ots(
    conn: &mut SqliteConnection,
    db_path: &Path,
    update: OtsUpdate,
) -> Result<(), StoreError> {
    let calendars = update.calendars.join("\n");
    let height = update.bitcoin_height.map(|height| height as i64);
    let res = sqlx::query(
        "INSERT INTO ots_proofs (checkpoint_size, proof, status, calendars, bitcoin_height, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (checkpoint_size) DO UPDATE SET proof = excluded.proof, status = excluded.status, \
         calendars = excluded.calendars, bitcoin_height = excluded.bitcoin_height, updated_at = excluded.updated_at",
    )
    .bind(update.checkpoint_size as i64)
    .bind(&update.proof)
    .bind(update.status.as_str())
    .bind(calendars)
    .bind(height)
    .bind(now_rfc3339())
    .execute(&mut *conn)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(err)) if err.is_foreign_key_violation() => {
            Err(StoreError::NoSuchCheckpoint {
                size: update.checkpoint_size,
            })
        }
        Err(err) => Err(classify(db_path, "storing an OpenTimestamps proof", err)),
    }
}

async fn put_cosignature(
    conn: &mut SqliteConnection,
    db_path: &Path,
    size: u64,
    witness: &str,
    line: &str,
) -> Result<(), StoreError> {
    let res = sqlx::query(
        "INSERT INTO cosignatures (checkpoint_size, witness, line, received_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (checkpoint_size, witness) DO UPDATE SET line = excluded.line, received_at = excluded.received_at",
    )
    .bind(size as i64)
    .bind(witness)
    .bind(line)
    .bind(now_rfc3339())
    .execute(&mut *conn)
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(err)) if err.is_foreign_key_violation() => {
            Err(StoreError::NoSuchCheckpoint { size })
        }
        Err(err) => Err(classify(db_path, "storing a cosignature", err)),
    }
}

fn hash_32(db_path: &Path, column: &str, seq: i64, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt {
        path: db_path.to_owned(),
        detail: format!(
            "{column} of evidence seq {seq} has {} bytes instead of 32",
            bytes.len()
        ),
    })
}

fn fail_all(appends: Vec<QueuedAppend>, err: StoreError) {
    let err = Arc::new(err);
    for (_, _, ack) in appends {
        let _ = ack.send(Err(StoreError::NotCommitted {
            source: Arc::clone(&err),
        }));
    }
}
