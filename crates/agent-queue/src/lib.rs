//! The endpoint agent's offline queue: results wait here, durably and in order, until the appliance acknowledges them.
//!
//! Every [`Queue::push`] gets the next sequence number of this queue (strictly increasing, never
//! reused: not after acknowledgements, drops or restarts) and is committed to SQLite (WAL,
//! `synchronous=FULL`) before it returns, so a push that returned `Ok` survives SIGKILL and power
//! loss, and one that did not return is either wholly present or absent.
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
//! push drops the oldest items (a `disk_full` gap), retries once, and otherwise fails with
//! [`QueueError::DiskFull`]. Nothing is dropped silently.
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
//! The file's size is its high-water mark: acknowledged and dropped items leave free pages that
//! later pushes reuse, and `max_bytes` bounds the payloads queued at once.
//!
//! Measured on the project's machine kind (2 cores shared with other work, virtual disk, release
//! build; `cargo run --release -p agent-queue --example queue_bench`, 5,000 items of 512 bytes,
//! three runs on a quiet disk): a push, one fsynced commit each, 4,100–4,600/s (0.22–0.24 ms);
//! an acknowledgement of one item 3,300–4,300/s, of 100 items at a time 2,200–2,300
//! acknowledgements/s (≈ 220,000 items/s); a push into a full queue (drop the oldest, extend
//! the gap) 2,900–3,500/s; `pending` reads ≈ 450,000–510,000 entries/s. When other work loads
//! the disk, pushes fell to 1,200–1,400/s. The agent pushes a few items a minute.

mod db;
mod error;
mod evict;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Row};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::db::{State, classify, is_full};
pub use crate::error::QueueError;
use crate::evict::{Dropped, Eviction, Front};

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

/// The offline queue, one SQLite file held open exclusively. Share it with `Arc`; operations
/// run one at a time.
#[derive(Debug)]
pub struct Queue {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: SqliteConnection,
    limits: Limits,
    state: State,
    /// An operation began and did not finish cleanly (an error, or its future was dropped): its
    /// transaction may still be open and `state` may be stale, so the next operation rolls back
    /// and re-reads the state first.
    dirty: bool,
}

/// The size of the pages in which eviction reads the oldest items.
const EVICT_PAGE: i64 = 8;

/// An item about to be pushed.
struct NewItem<'a> {
    kind: &'a str,
    payload: &'a [u8],
    at_ns: i64,
}

/// A failed step inside an operation, before it is turned into a [`QueueError`].
enum Failed {
    Sql {
        action: &'static str,
        source: sqlx::Error,
    },
    Corrupt(String),
}

impl GapReason {
    /// The reason's name in snake case, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::QueueFull => "queue_full",
            GapReason::TooOld => "too_old",
            GapReason::DiskFull => "disk_full",
        }
    }

    fn from_stored(text: &str) -> Option<GapReason> {
        match text {
            "queue_full" => Some(GapReason::QueueFull),
            "too_old" => Some(GapReason::TooOld),
            "disk_full" => Some(GapReason::DiskFull),
            _ => None,
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
    /// Opens the queue file at `path`, creating it if missing, and recovers from any crash.
    ///
    /// Fails with [`QueueError::InUse`] while another `Queue` has the file open.
    pub async fn open(path: &Path, limits: Limits) -> Result<Queue, QueueError> {
        check_limits(&limits)?;
        let mut conn = db::open(path).await?;
        let state = db::load_state(&mut conn, path).await?;
        Ok(Queue {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                conn,
                limits,
                state,
                dirty: false,
            }),
        })
    }

    /// Replaces the bounds; they apply from the next push (nothing is dropped now).
    pub async fn set_limits(&self, limits: Limits) -> Result<(), QueueError> {
        check_limits(&limits)?;
        self.inner.lock().await.limits = limits;
        Ok(())
    }

    /// The queue file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an item and returns its sequence number once it is durably committed.
    ///
    /// Before appending, drops the oldest items that are older than `max_age` at `at`, then the
    /// oldest items until the new one fits `max_items` and `max_bytes`, each run recorded as a
    /// gap. If the disk is full, drops the oldest items holding at least the payload's size (a
    /// `disk_full` gap) and retries once; if that fails too, returns [`QueueError::DiskFull`] and
    /// the queue stays usable.
    pub async fn push(
        &self,
        kind: &str,
        payload: &[u8],
        at: OffsetDateTime,
    ) -> Result<u64, QueueError> {
        self.push_with(kind, at, |_seq| payload.to_vec()).await
    }

    /// [`Queue::push`] for a payload that carries its own sequence number (for example one
    /// signed over it): `payload` is called once, with the number the item gets, before the
    /// transaction begins. Pushes are serialised, so the number cannot change in between.
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
        let mut inner = self.inner.lock().await;
        let inner = &mut *inner;
        inner.begin(&self.path).await?;
        // Eviction and a refused commit never move `next_seq`, so this is the number the item
        // gets on either attempt below.
        let payload = payload(inner.state.next_seq);
        let size = payload.len() as u64;
        if size > inner.limits.max_bytes {
            inner.dirty = false;
            return Err(QueueError::ItemTooLarge {
                size,
                max_bytes: inner.limits.max_bytes,
            });
        }
        let item = NewItem {
            kind,
            payload: &payload,
            at_ns,
        };
        let first_try = push_once(&mut inner.conn, &inner.limits, inner.state, &item).await;
        let refused = match first_try {
            Ok((seq, state)) => return Ok(inner.finish(state, seq)),
            Err(Failed::Sql { source, .. }) if is_full(&source) => source,
            Err(failed) => return Err(failed.into_error(&self.path)),
        };
        // The refused transaction is rolled back (SQLite may already have done so); the
        // committed state is still `inner.state`.
        rollback(&mut inner.conn).await;
        let (state, n_dropped) = match make_room(&mut inner.conn, inner.state, size).await {
            Ok(made) => made,
            Err(Failed::Sql { source, .. }) if is_full(&source) => {
                return Err(QueueError::DiskFull {
                    path: self.path.clone(),
                    dropped: 0,
                    source,
                });
            }
            Err(failed) => return Err(failed.into_error(&self.path)),
        };
        inner.state = state;
        if n_dropped == 0 {
            inner.dirty = false;
            return Err(QueueError::DiskFull {
                path: self.path.clone(),
                dropped: 0,
                source: refused,
            });
        }
        match push_once(&mut inner.conn, &inner.limits, inner.state, &item).await {
            Ok((seq, state)) => Ok(inner.finish(state, seq)),
            Err(Failed::Sql { source, .. }) if is_full(&source) => Err(QueueError::DiskFull {
                path: self.path.clone(),
                dropped: n_dropped,
                source,
            }),
            Err(failed) => Err(failed.into_error(&self.path)),
        }
    }

    /// Up to `limit` entries after `after_seq`, in sequence order: items, and gaps (a gap that
    /// began at or before `after_seq` is returned from `after_seq + 1`).
    pub async fn pending(&self, after_seq: u64, limit: usize) -> Result<Vec<Entry>, QueueError> {
        let mut inner = self.inner.lock().await;
        let inner = &mut *inner;
        inner.begin(&self.path).await?;
        let res = read_pending(&mut inner.conn, after_seq, limit).await;
        let entries = res.map_err(|failed| failed.into_error(&self.path))?;
        inner.dirty = false;
        Ok(entries)
    }

    /// Removes every item and gap up to `up_to_seq`, which the receiver has durably stored.
    ///
    /// Acknowledging an already acknowledged sequence number again does nothing; acknowledging one
    /// that was never pushed is [`QueueError::AckBeyondEnd`].
    pub async fn ack(&self, up_to_seq: u64) -> Result<(), QueueError> {
        let mut inner = self.inner.lock().await;
        let inner = &mut *inner;
        inner.begin(&self.path).await?;
        let last_pushed = inner.state.next_seq - 1;
        if up_to_seq > last_pushed {
            inner.dirty = false;
            return Err(QueueError::AckBeyondEnd {
                up_to: up_to_seq,
                last_pushed,
            });
        }
        if up_to_seq <= inner.state.acked_through {
            inner.dirty = false;
            return Ok(());
        }
        let state = ack_once(&mut inner.conn, inner.state, up_to_seq)
            .await
            .map_err(|failed| failed.into_error(&self.path))?;
        inner.finish(state, ());
        Ok(())
    }

    /// What the queue holds, with the oldest item's age at `now`.
    pub async fn stats(&self, now: OffsetDateTime) -> Result<Stats, QueueError> {
        let mut inner = self.inner.lock().await;
        let inner = &mut *inner;
        inner.begin(&self.path).await?;
        inner.dirty = false;
        let state = inner.state;
        let oldest_age = state.front_at_ns.map(|at_ns| {
            let age_ns = now.unix_timestamp_nanos() - i128::from(at_ns);
            Duration::from_nanos(u64::try_from(age_ns.max(0)).unwrap_or(u64::MAX))
        });
        Ok(Stats {
            items: state.n_items,
            bytes: state.n_bytes,
            oldest_age,
            next_seq: state.next_seq,
            acked_through: state.acked_through,
            dropped: state.dropped,
        })
    }

    /// Closes the file cleanly (checkpointing the WAL). Dropping the queue is safe too: nothing
    /// committed depends on closing.
    pub async fn close(self) -> Result<(), QueueError> {
        let inner = self.inner.into_inner();
        inner
            .conn
            .close()
            .await
            .map_err(|err| classify(&self.path, "closing it", err))
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

impl Inner {
    /// Starts an operation: first recovers from one that did not finish, then marks this one
    /// as unfinished until [`Inner::finish`].
    async fn begin(&mut self, path: &Path) -> Result<(), QueueError> {
        if self.dirty {
            rollback(&mut self.conn).await;
            self.state = db::load_state(&mut self.conn, path).await?;
        }
        self.dirty = true;
        Ok(())
    }

    /// Ends an operation whose transaction committed, adopting the state it produced.
    fn finish<T>(&mut self, state: State, value: T) -> T {
        self.state = state;
        self.dirty = false;
        value
    }
}

impl Failed {
    fn at(action: &'static str) -> impl FnOnce(sqlx::Error) -> Failed {
        move |source| Failed::Sql { action, source }
    }

    fn into_error(self, path: &Path) -> QueueError {
        match self {
            Failed::Sql { action, source } => classify(path, action, source),
            Failed::Corrupt(detail) => QueueError::Corrupt {
                path: path.to_owned(),
                detail,
            },
        }
    }
}

/// One push transaction: evict, insert, count. Returns the new item's seq and the state after commit.
async fn push_once(
    conn: &mut SqliteConnection,
    limits: &Limits,
    state: State,
    item: &NewItem<'_>,
) -> Result<(u64, State), Failed> {
    let size = item.payload.len() as u64;
    execute(conn, "BEGIN IMMEDIATE", "starting a push").await?;
    let mut eviction = Eviction::for_push(limits, state.n_items, state.n_bytes, size, item.at_ns);
    if eviction.might_drop(state.front_at_ns) {
        read_front(conn, &mut eviction).await?;
    }
    let mut state = apply_drops(conn, state, &eviction).await?;
    let seq = state.next_seq;
    sqlx::query("INSERT INTO items (seq, kind, payload, at_ns) VALUES (?, ?, ?, ?)")
        .bind(to_sql(seq)?)
        .bind(item.kind)
        .bind(item.payload)
        .bind(item.at_ns)
        .execute(&mut *conn)
        .await
        .map_err(Failed::at("storing the item"))?;
    state.next_seq = seq + 1;
    state.n_items += 1;
    state.n_bytes += size;
    state.front_at_ns = state.front_at_ns.or(Some(item.at_ns));
    write_counters(conn, &state).await?;
    execute(conn, "COMMIT", "committing the item").await?;
    Ok((seq, state))
}

/// After the disk refused a push: drops the oldest items holding at least `needed_bytes` as a
/// `disk_full` gap, in a transaction of its own so the space is free for the retry. Returns the
/// state after commit and how many items were dropped (0: the queue held none).
async fn make_room(
    conn: &mut SqliteConnection,
    state: State,
    needed_bytes: u64,
) -> Result<(State, u64), Failed> {
    execute(conn, "BEGIN IMMEDIATE", "starting to make room").await?;
    let mut eviction = Eviction::for_disk_full(state.n_items, state.n_bytes, needed_bytes);
    if eviction.might_drop(state.front_at_ns) {
        read_front(conn, &mut eviction).await?;
    }
    let n_dropped = eviction.drops().iter().map(|run| run.n_items).sum();
    if n_dropped == 0 {
        execute(conn, "ROLLBACK", "ending an empty eviction").await?;
        return Ok((state, 0));
    }
    let state = apply_drops(conn, state, &eviction).await?;
    write_counters(conn, &state).await?;
    execute(conn, "COMMIT", "committing the dropped items").await?;
    Ok((state, n_dropped))
}

/// One acknowledgement transaction. Returns the state after commit.
async fn ack_once(
    conn: &mut SqliteConnection,
    mut state: State,
    up_to_seq: u64,
) -> Result<State, Failed> {
    let up_to = to_sql(up_to_seq)?;
    let action = "removing acknowledged entries";
    execute(conn, "BEGIN IMMEDIATE", "starting an acknowledgement").await?;
    let removed =
        sqlx::query("SELECT count(*), coalesce(sum(length(payload)), 0) FROM items WHERE seq <= ?")
            .bind(up_to)
            .fetch_one(&mut *conn)
            .await
            .map_err(Failed::at(action))?;
    let n_items = from_sql(removed.try_get(0).map_err(Failed::at(action))?)?;
    let n_bytes = from_sql(removed.try_get(1).map_err(Failed::at(action))?)?;
    for sql in [
        "DELETE FROM items WHERE seq <= ?1",
        "DELETE FROM gaps WHERE last <= ?1",
        // A gap acknowledged in part keeps only its unacknowledged tail.
        "UPDATE gaps SET first = ?1 + 1 WHERE first <= ?1",
    ] {
        sqlx::query(sql)
            .bind(up_to)
            .execute(&mut *conn)
            .await
            .map_err(Failed::at(action))?;
    }
    state.acked_through = up_to_seq;
    state.n_items -= n_items.min(state.n_items);
    state.n_bytes -= n_bytes.min(state.n_bytes);
    if n_items > 0 {
        state.front_at_ns = sqlx::query_scalar("SELECT at_ns FROM items ORDER BY seq LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(Failed::at("reading the oldest item"))?;
    }
    write_counters(conn, &state).await?;
    execute(conn, "COMMIT", "committing the acknowledgement").await?;
    Ok(state)
}

/// Offers the oldest items to `eviction`, a page at a time, until it keeps one or none is left.
async fn read_front(conn: &mut SqliteConnection, eviction: &mut Eviction) -> Result<(), Failed> {
    let action = "reading the oldest items";
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, length(payload), at_ns FROM items WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(EVICT_PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(Failed::at(action))?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            let seq: i64 = row.try_get(0).map_err(Failed::at(action))?;
            let bytes: i64 = row.try_get(1).map_err(Failed::at(action))?;
            let at_ns: i64 = row.try_get(2).map_err(Failed::at(action))?;
            after = seq;
            let front = Front {
                seq: from_sql(seq)?,
                bytes: from_sql(bytes)?,
                at_ns,
            };
            if !eviction.offer(front) {
                return Ok(());
            }
        }
    }
}

/// Deletes the items `eviction` dropped and records each run as a gap, extending the newest gap
/// when the run continues it with the same reason. Returns the state with the drops counted.
async fn apply_drops(
    conn: &mut SqliteConnection,
    mut state: State,
    eviction: &Eviction,
) -> Result<State, Failed> {
    let action = "dropping the oldest items";
    for run in eviction.drops() {
        let Dropped {
            first,
            last,
            reason,
            n_items,
            n_bytes,
        } = *run;
        let deleted = sqlx::query("DELETE FROM items WHERE seq BETWEEN ? AND ?")
            .bind(to_sql(first)?)
            .bind(to_sql(last)?)
            .execute(&mut *conn)
            .await
            .map_err(Failed::at(action))?
            .rows_affected();
        if deleted != n_items {
            return Err(Failed::Corrupt(format!(
                "dropping items {first}..={last} deleted {deleted} rows, expected {n_items}"
            )));
        }
        let newest =
            sqlx::query("SELECT first, last, reason FROM gaps ORDER BY first DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await
                .map_err(Failed::at(action))?;
        let continues = match &newest {
            Some(row) => {
                let newest_last: i64 = row.try_get(1).map_err(Failed::at(action))?;
                let newest_reason: String = row.try_get(2).map_err(Failed::at(action))?;
                newest_last + 1 == to_sql(first)? && newest_reason == reason.as_str()
            }
            None => false,
        };
        if let (true, Some(row)) = (continues, &newest) {
            let newest_first: i64 = row.try_get(0).map_err(Failed::at(action))?;
            sqlx::query("UPDATE gaps SET last = ? WHERE first = ?")
                .bind(to_sql(last)?)
                .bind(newest_first)
                .execute(&mut *conn)
                .await
                .map_err(Failed::at(action))?;
        } else {
            sqlx::query("INSERT INTO gaps (first, last, reason) VALUES (?, ?, ?)")
                .bind(to_sql(first)?)
                .bind(to_sql(last)?)
                .bind(reason.as_str())
                .execute(&mut *conn)
                .await
                .map_err(Failed::at(action))?;
        }
        state.n_items -= n_items.min(state.n_items);
        state.n_bytes -= n_bytes.min(state.n_bytes);
        state.dropped += n_items;
    }
    if !eviction.drops().is_empty() {
        state.front_at_ns = eviction.kept_front_at_ns();
    }
    Ok(state)
}

async fn write_counters(conn: &mut SqliteConnection, state: &State) -> Result<(), Failed> {
    sqlx::query("UPDATE counters SET next_seq = ?, acked_through = ?, dropped = ? WHERE id = 1")
        .bind(to_sql(state.next_seq)?)
        .bind(to_sql(state.acked_through)?)
        .bind(to_sql(state.dropped)?)
        .execute(&mut *conn)
        .await
        .map_err(Failed::at("updating the counters"))?;
    Ok(())
}

async fn read_pending(
    conn: &mut SqliteConnection,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<Entry>, Failed> {
    let action = "reading pending entries";
    let rows = sqlx::query(
        "SELECT first AS seq, last, NULL AS kind, NULL AS payload, NULL AS at_ns, reason
           FROM gaps WHERE last > ?1
         UNION ALL
         SELECT seq, seq, kind, payload, at_ns, NULL FROM items WHERE seq > ?1
         ORDER BY 1 LIMIT ?2",
    )
    // No stored seq exceeds i64::MAX, so a larger cursor simply has nothing after it.
    .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
    .map_err(Failed::at(action))?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let seq = from_sql(row.try_get(0).map_err(Failed::at(action))?)?;
        let last = from_sql(row.try_get(1).map_err(Failed::at(action))?)?;
        let reason: Option<String> = row.try_get(5).map_err(Failed::at(action))?;
        let entry = match reason {
            Some(reason) => Entry::Gap {
                first: seq.max(after_seq.saturating_add(1)),
                last,
                reason: GapReason::from_stored(&reason)
                    .ok_or_else(|| Failed::Corrupt(format!("unknown gap reason `{reason}`")))?,
            },
            None => {
                let at_ns: i64 = row.try_get(4).map_err(Failed::at(action))?;
                let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ns))
                    .map_err(|_| Failed::Corrupt(format!("item {seq} has time {at_ns} ns")))?;
                Entry::Item {
                    seq,
                    kind: row.try_get(2).map_err(Failed::at(action))?,
                    payload: row.try_get(3).map_err(Failed::at(action))?,
                    at,
                }
            }
        };
        entries.push(entry);
    }
    Ok(entries)
}

async fn execute(
    conn: &mut SqliteConnection,
    sql: &'static str,
    action: &'static str,
) -> Result<(), Failed> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map_err(Failed::at(action))?;
    Ok(())
}

/// Rolls back whatever transaction is open. SQLite may already have rolled it back itself (it
/// does on some `SQLITE_FULL` errors), and then this reports "no transaction is active", which
/// is the state wanted; so the result is not needed.
async fn rollback(conn: &mut SqliteConnection) {
    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
}

fn to_sql(value: u64) -> Result<i64, Failed> {
    i64::try_from(value).map_err(|_| Failed::Corrupt(format!("{value} does not fit SQLite")))
}

fn from_sql(value: i64) -> Result<u64, Failed> {
    u64::try_from(value).map_err(|_| Failed::Corrupt(format!("negative value {value} stored")))
}
