//! The endpoint agent's offline queue: results wait here, durably and in order, until the appliance acknowledges them.
//!
//! Every [`Queue::push`] gets the next sequence number of this queue (strictly increasing, never
//! reused: not after acknowledgements, drops or restarts) and is appended to the queue's log as
//! one checksummed frame and `fdatasync`ed before it returns, so a push that returned `Ok`
//! survives SIGKILL and power loss, and one that did not return is either wholly present or
//! absent (a frame cut short by a crash is found by its checksum and cut off at the next open).
//! [`Queue::push_with`] builds the payload from the number it gets, for payloads signed over
//! their own sequence number.
//! [`Queue::pending`] reads what is waiting after a sequence number, in order; [`Queue::ack`]
//! removes everything up to the sequence number the appliance has durably stored;
//! [`Queue::set_limits`] changes the bounds of an open queue.
//!
//! The queue is bounded by [`Limits`]: when a push would exceed `max_items` or `max_bytes`, or
//! the oldest items are older than `max_age` at the pushed item's time, the oldest items are
//! dropped and a gap record ([`Entry::Gap`]) takes their place, naming the sequence numbers lost
//! and why; adjacent drops for the same reason coalesce into one gap. When the disk is full the
//! push drops the oldest items (a `disk_full` gap) so that whole segment files can go, retries
//! once, and otherwise fails with [`QueueError::DiskFull`]. Nothing is dropped silently.
//!
//! Delivery contract, for a sender that streams `pending(cursor)` and moves its cursor to each
//! entry's [`Entry::last_seq`]: after any crash, `pending(last acknowledged)` yields every
//! committed, unacknowledged sequence number exactly once, as an item or inside a gap, in order.
//! The appliance deduplicates by sequence number anyway, since it may hold items it had not yet
//! acknowledged when the agent restarted.
//!
//! Ages are judged at push time, with the pushed item's time as the clock: an idle queue keeps its
//! old items until the next push (the agent pushes heartbeats and results all the time).
//!
//! Files (`journal.rs` has the details): the path given to [`Queue::open`]
//! is a small anchor file, locked while the queue is open; beside it, `<name>.<n>.log` segment
//! files hold the log. A segment is removed once none of its items is queued, so the files hold
//! about the queued payloads plus one segment (64 KiB to 4 MiB); `max_bytes` bounds the payloads.
//! The queue keeps an index of 24 bytes per queued item in memory (2.4 MB for 100,000 items);
//! payloads stay on disk. Opening reads every segment once (checksums included).
//!
//! The work is synchronous file IO; each operation runs on Tokio's blocking pool
//! (`spawn_blocking`), so an `fsync` never stalls the caller's runtime. Operations run one at a
//! time, and one whose future is dropped still completes (or not) as a whole.
//!
//! Measured on the project's machine kind (2 cores shared with other builds, virtual disk, release
//! build; `cargo run --release -p agent-queue --example queue_bench`, 5,000 items of 512 bytes):
//! a push, one `fdatasync` each, 2,500–5,200/s while other builds loaded the disk, where the
//! SQLite queue this replaced did 730–3,800/s interleaved with it (4,100–4,600/s on a quiet disk);
//! on tmpfs, where a sync costs nothing, 87,000–152,000 pushes/s against SQLite's 36,000–42,000.
//! Opening 5,000 items takes 7–19 ms. docs/PERFORMANCE.md has the rest; the agent pushes a few
//! items a minute.

mod error;
mod evict;
mod frame;
mod journal;
mod state;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use crate::error::QueueError;
use crate::frame::MAX_PAYLOAD_BYTES;
use crate::journal::Journal;

/// The longest item kind, in bytes.
pub const MAX_KIND_BYTES: usize = 64;

/// The queue's bounds. Changing them between runs is fine: they apply from the next push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most items queued (gap records do not count); at least 1.
    pub max_items: u64,
    /// The most payload bytes queued; at least 1, and no single payload may be larger.
    pub max_bytes: u64,
    /// Items older than this (by their own time, against the time of a new push) are dropped.
    pub max_age: Duration,
}

/// Why a run of sequence numbers was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// A push would have exceeded `max_items` or `max_bytes`.
    QueueFull,
    /// The items were older than `max_age`.
    TooOld,
    /// The disk was full when a push was committed.
    DiskFull,
}

/// One thing waiting for the appliance: an item, or a run of items that had to be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A pushed item.
    Item {
        /// Its sequence number.
        seq: u64,
        /// What the payload is (for example `result` or `heartbeat`); the queue does not interpret it.
        kind: String,
        /// The bytes pushed.
        payload: Vec<u8>,
        /// The time given at push, in UTC.
        at: OffsetDateTime,
    },
    /// Sequence numbers `first..=last` were dropped, for `reason`.
    Gap {
        /// The first sequence number lost.
        first: u64,
        /// The last sequence number lost.
        last: u64,
        /// Why.
        reason: GapReason,
    },
}

/// What the queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Items queued (gap records not counted).
    pub items: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// How long the oldest queued item has waited, at the time asked (zero if its time is later).
    pub oldest_age: Option<Duration>,
    /// The sequence number the next push gets.
    pub next_seq: u64,
    /// Everything up to this sequence number is acknowledged (0: nothing yet).
    pub acked_through: u64,
    /// Items dropped over the queue's whole life.
    pub dropped: u64,
}

/// The offline queue: an anchor file held open exclusively, and its segment files. Share it
/// with `Arc`; operations run one at a time. Use it inside a Tokio runtime.
#[derive(Debug)]
pub struct Queue {
    path: PathBuf,
    journal: Arc<Mutex<Journal>>,
}

impl GapReason {
    /// The reason's name in snake case (as the agent reports it).
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::QueueFull => "queue_full",
            GapReason::TooOld => "too_old",
            GapReason::DiskFull => "disk_full",
        }
    }
}

impl Entry {
    /// The last sequence number this entry covers: the item's, or the gap's last.
    /// A sender moves its cursor here after sending the entry.
    pub fn last_seq(&self) -> u64 {
        match self {
            Entry::Item { seq, .. } => *seq,
            Entry::Gap { last, .. } => *last,
        }
    }
}

impl Queue {
    /// Opens the queue at `path`, creating it if missing, and recovers from any crash (a write
    /// cut short is cut off; damage anywhere else is an error naming the file and offset).
    ///
    /// Fails with [`QueueError::InUse`] while another `Queue` has it open.
    pub async fn open(path: &Path, limits: Limits) -> Result<Queue, QueueError> {
        check_limits(&limits)?;
        let owned = path.to_owned();
        let journal = blocking(move || Journal::open(&owned, limits)).await?;
        Ok(Queue {
            path: journal.path().to_owned(),
            journal: Arc::new(Mutex::new(journal)),
        })
    }

    /// Replaces the bounds; they apply from the next push (nothing is dropped now).
    pub async fn set_limits(&self, limits: Limits) -> Result<(), QueueError> {
        check_limits(&limits)?;
        self.journal.lock().await.limits = limits;
        Ok(())
    }

    /// The queue's anchor file (its segments are beside it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an item and returns its sequence number once it is durably written.
    ///
    /// Before appending, drops the oldest items that are older than `max_age` at `at`, then the
    /// oldest items until the new one fits `max_items` and `max_bytes`, each run recorded as a
    /// gap. If the disk is full, drops the oldest items (a `disk_full` gap) so that segment files
    /// holding at least the item's size can be removed, and retries once; if that fails too,
    /// returns [`QueueError::DiskFull`] and the queue stays usable.
    pub async fn push(
        &self,
        kind: &str,
        payload: &[u8],
        at: OffsetDateTime,
    ) -> Result<u64, QueueError> {
        self.push_with(kind, at, |_seq| payload.to_vec()).await
    }

    /// [`Queue::push`] for a payload that carries its own sequence number (for example one
    /// signed over it): `payload` is called once, with the number the item gets, before anything
    /// is written. Pushes are serialised, so the number cannot change in between.
    pub async fn push_with(
        &self,
        kind: &str,
        at: OffsetDateTime,
        payload: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, QueueError> {
        if kind.is_empty() || kind.len() > MAX_KIND_BYTES {
            return Err(QueueError::BadKind {
                kind: kind.to_owned(),
            });
        }
        let at_ns = i64::try_from(at.unix_timestamp_nanos())
            .map_err(|_| QueueError::TimeOutOfRange { at })?;
        let journal = self.ready().await?;
        // Nothing but a push moves `next_seq`, and this guard keeps every other operation out
        // until the push below has finished, even if this future is dropped meanwhile.
        let seq = journal.state.next_seq;
        let payload = payload(seq);
        let size = payload.len() as u64;
        let max_bytes = journal.limits.max_bytes.min(MAX_PAYLOAD_BYTES);
        if size > max_bytes {
            return Err(QueueError::ItemTooLarge { size, max_bytes });
        }
        let kind = kind.to_owned();
        run(journal, move |journal| {
            push_once_more_if_full(journal, seq, &kind, &payload, at_ns)
        })
        .await
    }

    /// Up to `limit` entries after `after_seq`, in sequence order: items, and gaps (a gap that
    /// began at or before `after_seq` is returned from `after_seq + 1`).
    pub async fn pending(&self, after_seq: u64, limit: usize) -> Result<Vec<Entry>, QueueError> {
        let journal = self.journal.clone().lock_owned().await;
        run(journal, move |journal| journal.pending(after_seq, limit)).await
    }

    /// Removes every item and gap up to `up_to_seq`, which the receiver has durably stored.
    ///
    /// Acknowledging an already acknowledged sequence number again does nothing; acknowledging one
    /// that was never pushed is [`QueueError::AckBeyondEnd`].
    pub async fn ack(&self, up_to_seq: u64) -> Result<(), QueueError> {
        let journal = self.ready().await?;
        let last_pushed = journal.state.next_seq - 1;
        if up_to_seq > last_pushed {
            return Err(QueueError::AckBeyondEnd {
                up_to: up_to_seq,
                last_pushed,
            });
        }
        if up_to_seq <= journal.state.acked_through {
            return Ok(());
        }
        run(journal, move |journal| journal.ack(up_to_seq)).await
    }

    /// What the queue holds, with the oldest item's age at `now`.
    pub async fn stats(&self, now: OffsetDateTime) -> Result<Stats, QueueError> {
        let journal = self.ready().await?;
        let state = &journal.state;
        let oldest_age = state.front_at_ns().map(|at_ns| {
            let age_ns = now.unix_timestamp_nanos() - i128::from(at_ns);
            Duration::from_nanos(u64::try_from(age_ns.max(0)).unwrap_or(u64::MAX))
        });
        Ok(Stats {
            items: state.n_items(),
            bytes: state.n_bytes(),
            oldest_age,
            next_seq: state.next_seq,
            acked_through: state.acked_through,
            dropped: state.dropped,
        })
    }

    /// Closes the queue once the operation in progress (if any) has finished, releasing its
    /// lock. Dropping the queue is safe too: everything that returned is already on disk.
    pub async fn close(self) -> Result<(), QueueError> {
        drop(self.journal.lock().await);
        Ok(())
    }

    /// The journal, its state read again from the files first if a failed write left them in
    /// doubt.
    async fn ready(&self) -> Result<OwnedMutexGuard<Journal>, QueueError> {
        let journal = self.journal.clone().lock_owned().await;
        if !journal.needs_recovery() {
            return Ok(journal);
        }
        run_keep(journal, Journal::recover).await
    }
}

fn check_limits(limits: &Limits) -> Result<(), QueueError> {
    if limits.max_items == 0 {
        return Err(QueueError::Limits("max_items must be at least 1"));
    }
    if limits.max_bytes == 0 {
        return Err(QueueError::Limits("max_bytes must be at least 1"));
    }
    if limits.max_age.is_zero() {
        return Err(QueueError::Limits("max_age must be longer than zero"));
    }
    Ok(())
}

/// One push with the disk-full rule: if the disk refuses it, drop the oldest items so that
/// segment files can go, and try once more.
fn push_once_more_if_full(
    journal: &mut Journal,
    seq: u64,
    kind: &str,
    payload: &[u8],
    at_ns: i64,
) -> Result<u64, QueueError> {
    let path = journal.path().to_owned();
    let refused = match journal.try_push(seq, kind, payload, at_ns) {
        Ok(()) => return Ok(seq),
        Err(failed) if failed.is_disk_full() => failed,
        Err(failed) => return Err(failed.into_error()),
    };
    // If cutting the refused frame off failed too, the files are read again; should the frame
    // have reached them after all, the item is there under `seq` but not known to be durable,
    // so the push reports the refusal and nothing is dropped for it.
    journal.recover()?;
    if journal.state.next_seq != seq {
        return Err(disk_full_or(refused, &path, 0));
    }
    let needed = frame::push_frame_bytes(kind, payload.len() as u64);
    let n_dropped = match journal.make_room(needed) {
        Ok(n_dropped) => n_dropped,
        Err(failed) => return Err(disk_full_or(failed, &path, 0)),
    };
    if n_dropped == 0 {
        return Err(disk_full_or(refused, &path, 0));
    }
    match journal.try_push(seq, kind, payload, at_ns) {
        Ok(()) => Ok(seq),
        Err(failed) => Err(disk_full_or(failed, &path, n_dropped)),
    }
}

/// [`QueueError::DiskFull`] for a write the disk refused, else the failure's own error.
fn disk_full_or(failed: journal::Failed, path: &Path, dropped: u64) -> QueueError {
    match failed {
        journal::Failed::Io { source, .. } if journal::is_full(&source) => QueueError::DiskFull {
            path: path.to_owned(),
            dropped,
            source,
        },
        failed => failed.into_error(),
    }
}

/// Runs `work` on the journal on Tokio's blocking pool, holding the lock until it is done.
async fn run<T: Send + 'static>(
    mut journal: OwnedMutexGuard<Journal>,
    work: impl FnOnce(&mut Journal) -> Result<T, QueueError> + Send + 'static,
) -> Result<T, QueueError> {
    blocking(move || work(&mut journal)).await
}

/// [`run`], handing the guard back for more work under the same lock.
async fn run_keep(
    mut journal: OwnedMutexGuard<Journal>,
    work: impl FnOnce(&mut Journal) -> Result<(), QueueError> + Send + 'static,
) -> Result<OwnedMutexGuard<Journal>, QueueError> {
    blocking(move || work(&mut journal).map(|()| journal)).await
}

/// Runs blocking work on Tokio's blocking pool and returns its result.
///
/// # Panics
/// If `work` panics (the panic continues here), or if the runtime shuts down before the work
/// began (then nothing was done, and the caller is being shut down too).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(err) => panic!("the queue's blocking work did not run: {err}"),
        },
    }
}
