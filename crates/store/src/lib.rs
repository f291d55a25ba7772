//! SQLite storage of the evidence log and appliance state, with group commit.
//!
//! One writer task owns the [`evidence::LogWriter`] and the only read-write connection.
//! Callers canonicalise their drafts, send them over a channel and are answered only after the
//! transaction holding their bundles is durably committed (WAL, `synchronous=FULL`).
//! Reads go through a small pool of read-only connections.

mod agents;
mod db;
mod error;
mod proofs;
mod summary;
mod writer;

use std::fs::{DirBuilder, File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use evidence::ApplianceKeySource;
use evidence::keys::ApplianceKey;
use evidence::kit::{KitError, KitSource, KitSummary};
use evidence::log::BundleDraft;
use futures_util::{Stream, StreamExt};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Connection as _, Row};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use crate::agents::{AgentRecord, AgentTokenRecord, NewAgent, NewAgentToken, TokenRefusal};
use crate::db::classify;
pub use crate::error::StoreError;
pub use crate::proofs::CheckpointState;
pub use crate::summary::{BundleDay, CheckDay, LogReads};
use crate::writer::{Head, Prepared, Request, Writer};

/// Where and for which site the store keeps its data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory; created (mode 0700) if missing.
    pub data_dir: PathBuf,
    /// The site id from the appliance configuration.
    pub site: String,
}

/// The evidence store: the append-only evidence log, checkpoints and OpenTimestamps proofs.
#[derive(Debug)]
pub struct Store {
    requests: mpsc::Sender<Request>,
    head: watch::Receiver<Head>,
    readers: SqlitePool,
    writer: JoinHandle<()>,
    db_path: PathBuf,
    appliance_id: String,
    origin: String,
    verifier: evidence::keys::VerifierKey,
    key: ApplianceKey,
    site: String,
    _lock: File,
}

/// A bundle that is durably stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its position in the log.
    pub seq: u64,
    /// SHA-256 of its line (the next bundle's `prev`).
    pub line_hash: [u8; 32],
}

/// One stored bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its position in the log.
    pub seq: u64,
    /// The JCS line, without the trailing newline.
    pub line: Vec<u8>,
    /// RFC 9162 leaf hash of the line.
    pub leaf_hash: [u8; 32],
    /// SHA-256 of the line.
    pub line_hash: [u8; 32],
    /// The bundle kind.
    pub kind: String,
    /// When the bundle was committed (RFC 3339 UTC).
    pub created_at: String,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it covers.
    pub size: u64,
    /// The signed note text.
    pub note: String,
    /// When it was stored (RFC 3339 UTC).
    pub created_at: String,
}

/// Whether an OpenTimestamps proof is anchored in Bitcoin yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtsStatus {
    /// Calendars have the digest; the proof still needs an upgrade.
    Pending,
    /// The proof reaches a Bitcoin block header.
    Anchored,
}

/// A new or upgraded OpenTimestamps proof of a checkpoint file.
#[derive(Debug, Clone)]
pub struct OtsUpdate {
    /// The size of the checkpoint whose file is timestamped.
    pub checkpoint_size: u64,
    /// The serialised `.ots` proof.
    pub proof: Vec<u8>,
    /// Whether it is anchored.
    pub status: OtsStatus,
    /// The calendar URLs that were asked.
    pub calendars: Vec<String>,
    /// The Bitcoin block height of the attestation, once anchored.
    pub bitcoin_height: Option<u64>,
}

/// One L1 remediation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealAttempt {
    /// The L1 rule that chose the remediation.
    pub rule: String,
    /// The target it ran on.
    pub target: String,
    /// The check it answered.
    pub check: String,
    /// When it ran (Unix seconds).
    pub at: i64,
    /// Whether the re-run detect passed afterwards.
    pub verified: bool,
    /// The evidence bundle recording it.
    pub evidence_seq: Option<u64>,
}

/// A stored OpenTimestamps proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtsProof {
    /// The size of the checkpoint whose file is timestamped.
    pub checkpoint_size: u64,
    /// The serialised `.ots` proof.
    pub proof: Vec<u8>,
    /// Whether it is anchored.
    pub status: OtsStatus,
    /// The calendar URLs that were asked.
    pub calendars: Vec<String>,
    /// The Bitcoin block height of the attestation, once anchored.
    pub bitcoin_height: Option<u64>,
    /// When it was last replaced (RFC 3339 UTC).
    pub updated_at: String,
}

impl OtsStatus {
    /// The value stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            OtsStatus::Pending => "pending",
            OtsStatus::Anchored => "anchored",
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `cfg.data_dir` and resumes the log from the database.
    ///
    /// Nothing is written to an existing database until it has been checked to be SQLite, of a
    /// schema this build knows, and owned by this appliance's key.
    pub async fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let Opened {
            lock,
            key,
            db_path,
            mut conn,
        } = prepare(cfg).await?;
        let appliance_id = key.appliance_id().to_owned();
        let (log, head) = writer::load_log(&mut conn, &db_path, key.clone()).await?;
        let readers = db::open_readers(&db_path).await?;
        let (head_tx, head_rx) = watch::channel(head);
        let (requests, requests_rx) = mpsc::channel(writer::MAX_BATCH);
        let writer = Writer {
            conn,
            log: Some(log),
            db_path: db_path.clone(),
            key: key.clone(),
            head: head_tx,
        };
        let writer = tokio::spawn(writer.run(requests_rx));
        tracing::debug!(path = %db_path.display(), size = head.size, "Evidence store opened.");
        Ok(Store {
            requests,
            head: head_rx,
            readers,
            writer,
            db_path,
            appliance_id,
            origin: key.origin().to_owned(),
            verifier: key.verifier(),
            key,
            site: cfg.site.clone(),
            _lock: lock,
        })
    }

    /// The appliance id of the key that owns this store.
    pub fn appliance_id(&self) -> &str {
        &self.appliance_id
    }

    /// The log origin, `osiris-appliance/<appliance id>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier (public) key of the appliance.
    pub fn verifier(&self) -> &evidence::keys::VerifierKey {
        &self.verifier
    }

    /// The site id the store was opened for.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Seals and stores one bundle; resolves only after its transaction is durably committed.
    pub async fn append(&self, draft: BundleDraft) -> Result<Appended, StoreError> {
        let mut res = self.append_batch(vec![draft]).await?;
        res.pop().ok_or(StoreError::WriterStopped)
    }

    /// Seals and stores bundles with consecutive seqs; resolves only after they are durably committed.
    ///
    /// If any draft cannot be sealed, none is stored.
    pub async fn append_batch(
        &self,
        drafts: Vec<BundleDraft>,
    ) -> Result<Vec<Appended>, StoreError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        self.append_with(drafts, Vec::new()).await
    }

    /// Seals `drafts` and commits them with the registry `effects` in one transaction.
    pub(crate) async fn append_with(
        &self,
        drafts: Vec<BundleDraft>,
        effects: Vec<agents::Effect>,
    ) -> Result<Vec<Appended>, StoreError> {
        let drafts = drafts
            .into_iter()
            .map(|draft| {
                let prepared = draft.prepare().map_err(StoreError::Seal)?;
                Ok(Prepared {
                    draft: prepared,
                    kind: draft.kind,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.ask(|ack| Request::Append {
            drafts,
            effects,
            ack,
        })
        .await?
    }

    /// The number of committed bundles.
    pub fn size(&self) -> u64 {
        self.head.borrow().size
    }

    /// The last committed bundle's seq and line hash, or `None` for an empty log.
    pub fn head(&self) -> Option<Appended> {
        let head = *self.head.borrow();
        let line_hash = head.last_line_hash?;
        Some(Appended {
            seq: head.size.checked_sub(1)?,
            line_hash,
        })
    }

    /// The size and Merkle root of the committed tree.
    pub async fn root(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.ask(|ack| Request::Root { ack }).await
    }

    /// One stored bundle.
    pub async fn entry(&self, seq: u64) -> Result<Option<StoredEntry>, StoreError> {
        let row = sqlx::query(ENTRY_SELECT_ONE)
            .bind(to_i64(seq))
            .fetch_optional(&self.readers)
            .await
            .map_err(|err| classify(&self.db_path, "reading an entry", err))?;
        row.map(|row| entry_from_row(&self.db_path, &row))
            .transpose()
    }

    /// Streams the stored bundles with seq in `range`, in seq order.
    pub fn entries(
        &self,
        range: Range<u64>,
    ) -> impl Stream<Item = Result<StoredEntry, StoreError>> + Send + '_ {
        sqlx::query(ENTRY_SELECT_RANGE)
            .bind(to_i64(range.start))
            .bind(to_i64(range.end))
            .fetch(&self.readers)
            .map(move |row| {
                let row = row.map_err(|err| classify(&self.db_path, "reading entries", err))?;
                entry_from_row(&self.db_path, &row)
            })
    }

    /// Streams `(seq, line)` of the bundles whose kind is one of `kinds`, with seq in `range`, in
    /// seq order; nothing else of a row is read (reports read a month of scans this way).
    pub fn lines_of_kinds(
        &self,
        range: Range<u64>,
        kinds: &[&str],
    ) -> impl Stream<Item = Result<(u64, Vec<u8>), StoreError>> + Send + '_ {
        self.reads().lines_of_kinds(range, kinds)
    }

    /// What reports read: bundle lines by kind, the report summary, the newest checkpoint.
    pub fn reads(&self) -> LogReads<'_> {
        LogReads {
            readers: &self.readers,
            db_path: &self.db_path,
        }
    }

    /// Empties the report summary and fills it again from the stored bundles.
    pub async fn rebuild_report_summary(&self) -> Result<(), StoreError> {
        self.ask(|ack| Request::RebuildSummary { ack }).await?
    }

    /// Signs and stores a checkpoint of the current tree, or returns the stored one if the size did not change.
    pub async fn create_checkpoint(&self) -> Result<StoredCheckpoint, StoreError> {
        self.ask(|ack| Request::Checkpoint { ack }).await?
    }

    /// The newest stored checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.reads().latest_checkpoint().await
    }

    /// Every stored checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query("SELECT size, note, created_at FROM checkpoints ORDER BY size")
            .fetch_all(&self.readers)
            .await
            .map_err(|err| classify(&self.db_path, "reading checkpoints", err))?;
        rows.iter()
            .map(|row| checkpoint_from_row(&self.db_path, row))
            .collect()
    }

    /// The RFC 9162 inclusion proof of entry `seq` in the tree of size `size`.
    pub async fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<[u8; 32]>, StoreError> {
        self.ask(|ack| Request::Inclusion { seq, size, ack })
            .await?
    }

    /// The RFC 9162 consistency proof from tree size `old` to tree size `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, StoreError> {
        self.ask(|ack| Request::Consistency { old, new, ack })
            .await?
    }

    /// Stores an OpenTimestamps proof, replacing the earlier proof of the same checkpoint.
    pub async fn put_ots(&self, update: OtsUpdate) -> Result<(), StoreError> {
        self.ask(|ack| Request::PutOts { update, ack }).await?
    }

    /// Signs a message of the link to Central Command with the appliance key (standard base64
    /// Ed25519). Only the link's own messages are signed — they start with `osiris-enroll/v1` or
    /// `osiris-pickup/v1`, which no bundle, checkpoint or MANIFEST can — so this is no general
    /// signing oracle for the evidence key.
    pub fn sign_link_message(&self, message: &[u8]) -> Result<String, StoreError> {
        const LINK_LABELS: [&[u8]; 2] = [b"osiris-enroll/v1\n", b"osiris-pickup/v1\n"];
        if !LINK_LABELS.iter().any(|label| message.starts_with(label)) {
            return Err(StoreError::NotALinkMessage);
        }
        use base64::Engine;
        Ok(base64::engine::general_purpose::STANDARD.encode(self.key.sign(message)))
    }

    /// Keeps a witness's cosignature line (`— <witness> <base64>`) of the stored checkpoint of
    /// `size`, replacing an earlier one by the same witness. The line is checked for form only;
    /// auditors check it with `osiris evidence verify --witness-key`.
    pub async fn put_cosignature(&self, size: u64, line: &str) -> Result<(), StoreError> {
        let line = line.trim_end_matches('\n');
        let witness = line
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.split_once(' '))
            .map(|(name, _)| name.to_owned())
            .filter(|name| !name.is_empty() && !line.contains('\n'))
            .ok_or_else(|| StoreError::BadCosignature(line.chars().take(80).collect()))?;
        let line = format!("{line}\n");
        self.ask(|ack| Request::PutCosignature {
            size,
            witness,
            line,
            ack,
        })
        .await?
    }

    /// Every kept cosignature line, by checkpoint size.
    pub async fn cosignatures(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT checkpoint_size, line FROM cosignatures ORDER BY checkpoint_size, witness",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(|err| classify(&self.db_path, "reading cosignatures", err))?;
        Ok(rows
            .into_iter()
            .map(|(size, line)| (size as u64, line))
            .collect())
    }

    /// Records one L1 remediation attempt (the healing history cool-downs and limits use).
    pub async fn record_heal_attempt(&self, attempt: HealAttempt) -> Result<(), StoreError> {
        self.ask(|ack| Request::RecordHeal { attempt, ack }).await?
    }

    /// Remediation attempts at or after `since` (Unix seconds), oldest first.
    pub async fn heal_attempts_since(&self, since: i64) -> Result<Vec<HealAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT rule, target, check_id, at, result, evidence_seq FROM heal_attempts WHERE at >= ? ORDER BY at, id",
        )
        .bind(since)
        .fetch_all(&self.readers)
        .await
        .map_err(|err| classify(&self.db_path, "reading heal attempts", err))?;
        Ok(rows.iter().map(heal_from_row).collect())
    }

    /// Remediation attempts with a row id above `after`, oldest first, at most `limit`: the
    /// healing log as Central Command receives it (the id is its cursor).
    pub async fn heal_attempts_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, HealAttempt)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, rule, target, check_id, at, result, evidence_seq FROM heal_attempts WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await
        .map_err(|err| classify(&self.db_path, "reading heal attempts", err))?;
        Ok(rows
            .iter()
            .map(|row| (row.get("id"), heal_from_row(row)))
            .collect())
    }

    /// Every stored OpenTimestamps proof, by checkpoint size.
    pub async fn ots_proofs(&self) -> Result<Vec<OtsProof>, StoreError> {
        let rows = sqlx::query(
            "SELECT checkpoint_size, proof, status, calendars, bitcoin_height, updated_at FROM ots_proofs ORDER BY checkpoint_size",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(|err| classify(&self.db_path, "reading OpenTimestamps proofs", err))?;
        rows.iter()
            .map(|row| ots_from_row(&self.db_path, row))
            .collect()
    }

    /// Writes an auditor kit to `out` (which must not exist or be empty) covering the log as of now.
    ///
    /// Signs and stores a checkpoint of the current size first if none exists, so the kit's newest
    /// checkpoint covers every exported bundle; bundles appended meanwhile are left for the next kit.
    pub async fn export_kit(&self, out: &Path) -> Result<KitSummary, StoreError> {
        self.export_kit_with(out, None).await
    }

    /// As [`Store::export_kit`], with files for the auditor (`auditor/…` and the HTML manifest).
    pub async fn export_kit_with(
        &self,
        out: &Path,
        auditor: Option<evidence::kit::AuditorFiles>,
    ) -> Result<KitSummary, StoreError> {
        let checkpoint = self.create_checkpoint().await?;
        let size = checkpoint.size;
        let checkpoints = self
            .checkpoints()
            .await?
            .into_iter()
            .filter(|stored| stored.size <= size)
            .map(|stored| stored.note)
            .collect();
        let ots = self
            .ots_proofs()
            .await?
            .into_iter()
            .filter(|proof| proof.checkpoint_size <= size)
            .map(|proof| (proof.checkpoint_size, proof.proof))
            .collect();
        let cosignatures = self
            .cosignatures()
            .await?
            .into_iter()
            .filter(|(cosigned, _)| *cosigned <= size)
            .collect();
        // The kit writer is synchronous file IO: run it on a blocking thread and feed it lines
        // through a bounded channel, so memory stays flat however large the log is.
        let (lines_tx, mut lines_rx) = mpsc::channel::<Result<Vec<u8>, KitError>>(1024);
        let key = self.key.clone();
        let out = out.to_owned();
        let export = tokio::task::spawn_blocking(move || {
            let lines = std::iter::from_fn(move || lines_rx.blocking_recv());
            evidence::kit::export(
                &out,
                KitSource {
                    key: &key,
                    lines: Box::new(lines),
                    checkpoints,
                    ots,
                    cosignatures,
                    auditor,
                },
            )
        });
        let mut entries = std::pin::pin!(self.entries(0..size));
        while let Some(entry) = entries.next().await {
            let line = entry
                .map(|entry| entry.line)
                .map_err(|err| KitError::Source(Box::new(err)));
            let failed = line.is_err();
            // A closed channel means the export stopped early; its result says why.
            if lines_tx.send(line).await.is_err() || failed {
                break;
            }
        }
        drop(lines_tx);
        export
            .await
            .map_err(|_| {
                StoreError::Export(KitError::Source("the kit export thread panicked".into()))
            })?
            .map_err(StoreError::Export)
    }

    /// Stops the writer after it has answered every queued request, and closes the database.
    pub async fn close(self) {
        drop(self.requests);
        if let Err(err) = self.writer.await {
            tracing::error!(error = %err, "Evidence writer task failed.");
        }
        self.readers.close().await;
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, StoreError> {
        let (ack, answer) = oneshot::channel();
        self.requests
            .send(request(ack))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)
    }
}

/// A data directory opened for writing: its lock held, its key loaded, its database checked to
/// belong to that key and brought to this build's schema.
struct Opened {
    lock: File,
    key: ApplianceKey,
    db_path: PathBuf,
    conn: sqlx::SqliteConnection,
}

async fn prepare(cfg: &StoreConfig) -> Result<Opened, StoreError> {
    let data_dir = &cfg.data_dir;
    let not_writable = |source| StoreError::DataDirNotWritable {
        path: data_dir.clone(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(not_writable)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("osiris.lock"))
        .map_err(not_writable)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::InUse {
                path: data_dir.clone(),
            });
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(not_writable(source)),
    }
    // The systemd credential on the appliance (never written here), else the key file.
    let key = ApplianceKeySource::from_env(&data_dir.join("keys").join("appliance.key")).load()?;
    let appliance_id = key.appliance_id().to_owned();
    let db_path = data_dir.join("osiris.db");
    db::probe_existing(&db_path, &appliance_id).await?;
    let mut conn = db::open_writer(&db_path).await?;
    db::claim(&mut conn, &db_path, &appliance_id, &cfg.site).await?;
    Ok(Opened {
        lock,
        key,
        db_path,
        conn,
    })
}

/// Whose log a reader reads: what reports print about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogIdentity {
    /// The log origin, `osiris-appliance/<appliance id>`.
    pub origin: String,
    /// Hex id of the appliance key.
    pub key_id: String,
}

const ENTRY_SELECT_ONE: &str =
    "SELECT seq, line, leaf_hash, line_hash, kind, created_at FROM evidence WHERE seq = ?";
/// A read-only view of the evidence log of a data directory that another process (`osirisd`)
/// may be writing: no lock, no key, no writer; for reports on a running appliance.
pub struct LogReader {
    readers: SqlitePool,
    db_path: PathBuf,
}

impl LogReader {
    /// Opens `<data_dir>/osiris.db` read-only; it must exist.
    pub async fn open(data_dir: &Path) -> Result<LogReader, StoreError> {
        let db_path = data_dir.join("osiris.db");
        let readers = db::open_readers(&db_path).await?;
        Ok(LogReader { readers, db_path })
    }

    /// Opens the store of `cfg` for reading as [`Store::open`] would for writing (the data
    /// directory's lock, the key, the ownership check, migrations), but without loading the log
    /// into memory, and brings the report summary up to the log; the lock is released before
    /// reading. Reports read this way: a million-bundle log's Merkle tree is never built for them.
    pub async fn open_migrated(cfg: &StoreConfig) -> Result<(LogReader, LogIdentity), StoreError> {
        let Opened {
            lock,
            key,
            db_path,
            mut conn,
        } = prepare(cfg).await?;
        let filled = summary::fill_in(&mut conn, &db_path).await?;
        if filled > 0 {
            tracing::info!(bundles = filled, path = %db_path.display(), "Report summary filled in from stored bundles.");
        }
        let identity = LogIdentity {
            origin: key.origin().to_owned(),
            key_id: key.verifier().key_id_hex(),
        };
        // Closing the write connection after the migrations loses nothing.
        let _ = conn.close().await;
        drop(lock);
        let readers = db::open_readers(&db_path).await?;
        Ok((LogReader { readers, db_path }, identity))
    }

    /// The number of committed bundles when asked.
    pub async fn size(&self) -> Result<u64, StoreError> {
        let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM evidence")
            .fetch_one(&self.readers)
            .await
            .map_err(|err| classify(&self.db_path, "reading the log size", err))?;
        Ok(u64::try_from(size).unwrap_or_default())
    }

    /// As [`Store::lines_of_kinds`].
    pub fn lines_of_kinds(
        &self,
        range: Range<u64>,
        kinds: &[&str],
    ) -> impl Stream<Item = Result<(u64, Vec<u8>), StoreError>> + Send + '_ {
        self.reads().lines_of_kinds(range, kinds)
    }

    /// As [`Store::reads`].
    pub fn reads(&self) -> LogReads<'_> {
        LogReads {
            readers: &self.readers,
            db_path: &self.db_path,
        }
    }

    /// The newest stored checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.reads().latest_checkpoint().await
    }

    pub async fn close(self) {
        self.readers.close().await;
    }
}

const ENTRY_SELECT_RANGE: &str = "SELECT seq, line, leaf_hash, line_hash, kind, created_at FROM evidence WHERE seq >= ? AND seq < ? ORDER BY seq";

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn entry_from_row(db_path: &Path, row: &SqliteRow) -> Result<StoredEntry, StoreError> {
    let read = |err| classify(db_path, "reading an entry", err);
    let seq: i64 = row.try_get(0).map_err(read)?;
    let hash = |column: usize, name: &str| -> Result<[u8; 32], StoreError> {
        let bytes: &[u8] = row.try_get(column).map_err(read)?;
        <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt {
            path: db_path.to_owned(),
            detail: format!(
                "{name} of evidence seq {seq} has {} bytes instead of 32",
                bytes.len()
            ),
        })
    };
    Ok(StoredEntry {
        seq: seq as u64,
        line: row.try_get(1).map_err(read)?,
        leaf_hash: hash(2, "leaf_hash")?,
        line_hash: hash(3, "line_hash")?,
        kind: row.try_get(4).map_err(read)?,
        created_at: row.try_get(5).map_err(read)?,
    })
}

pub(crate) fn checkpoint_from_row(
    db_path: &Path,
    row: &SqliteRow,
) -> Result<StoredCheckpoint, StoreError> {
    let read = |err| classify(db_path, "reading a checkpoint", err);
    let size: i64 = row.try_get(0).map_err(read)?;
    Ok(StoredCheckpoint {
        size: size as u64,
        note: row.try_get(1).map_err(read)?,
        created_at: row.try_get(2).map_err(read)?,
    })
}

/// A `heal_attempts` row (the columns both readers select).
fn heal_from_row(row: &sqlx::sqlite::SqliteRow) -> HealAttempt {
    HealAttempt {
        rule: row.get("rule"),
        target: row.get("target"),
        check: row.get("check_id"),
        at: row.get("at"),
        verified: row.get::<String, _>("result") == "verified",
        evidence_seq: row
            .get::<Option<i64>, _>("evidence_seq")
            .map(|seq| seq as u64),
    }
}

fn ots_from_row(db_path: &Path, row: &SqliteRow) -> Result<OtsProof, StoreError> {
    let read = |err| classify(db_path, "reading an OpenTimestamps proof", err);
    let size: i64 = row.try_get(0).map_err(read)?;
    let status: String = row.try_get(2).map_err(read)?;
    let status = match status.as_str() {
        "pending" => OtsStatus::Pending,
        "anchored" => OtsStatus::Anchored,
        other => {
            return Err(StoreError::Corrupt {
                path: db_path.to_owned(),
                detail: format!("OpenTimestamps proof {size} has unknown status {other:?}"),
            });
        }
    };
    let calendars: String = row.try_get(3).map_err(read)?;
    let height: Option<i64> = row.try_get(4).map_err(read)?;
    Ok(OtsProof {
        checkpoint_size: size as u64,
        proof: row.try_get(1).map_err(read)?,
        status,
        calendars: calendars.lines().map(str::to_owned).collect(),
        bitcoin_height: height.map(|height| height as u64),
        updated_at: row.try_get(5).map_err(read)?,
    })
}
