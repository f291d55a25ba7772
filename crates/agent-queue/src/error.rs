//! The queue's error type: every way opening, pushing to, reading or acknowledging the queue can fail.

use std::path::PathBuf;

use time::OffsetDateTime;

/// An error from the offline queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The limits cannot bound a queue (a zero bound).
    #[error("queue limits are unusable: {0}")]
    Limits(&'static str),
    /// Another process (or another `Queue` in this one) has the queue file open.
    #[error(
        "queue {} is in use by another process; stop that process or use another path",
        path.display()
    )]
    InUse {
        /// The queue file.
        path: PathBuf,
    },
    /// The queue file could not be created.
    #[error("queue {} could not be created", path.display())]
    Create {
        /// The queue file.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an SQLite database.
    #[error(
        "{} is not an SQLite database (it is corrupt or something else wrote to it); move it aside",
        path.display()
    )]
    NotADatabase {
        /// The queue file.
        path: PathBuf,
    },
    /// Applying the schema migrations failed (for example, a newer agent wrote the file).
    #[error("queue {} could not be migrated; move it aside", path.display())]
    Migrate {
        /// The queue file.
        path: PathBuf,
        /// What the migrator reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// An SQLite operation failed; nothing of the operation was stored.
    #[error(
        "queue {} failed while {action} (check free disk space and the file's permissions)",
        path.display()
    )]
    Database {
        /// The queue file.
        path: PathBuf,
        /// What the queue was doing.
        action: &'static str,
        /// What SQLite reported.
        #[source]
        source: sqlx::Error,
    },
    /// The disk (or the file's size cap) refused a push even after the oldest items were dropped
    /// to make room; the item was not stored, the queue still holds everything else.
    #[error(
        "queue {} is out of disk space: {}; free disk space",
        path.display(),
        disk_full_detail(*dropped)
    )]
    DiskFull {
        /// The queue file.
        path: PathBuf,
        /// How many items were dropped trying to make room (0 when the queue held none).
        dropped: u64,
        /// What SQLite reported on the last attempt.
        #[source]
        source: sqlx::Error,
    },
    /// The stored queue contradicts itself.
    #[error("queue {} is inconsistent: {detail}; move it aside and report this as a bug", path.display())]
    Corrupt {
        /// The queue file.
        path: PathBuf,
        /// What is inconsistent.
        detail: String,
    },
    /// One item is larger than the whole queue may hold.
    #[error("an item of {size} bytes cannot be queued: the queue holds at most {max_bytes} bytes")]
    ItemTooLarge {
        /// The payload's size.
        size: u64,
        /// The queue's `max_bytes`.
        max_bytes: u64,
    },
    /// An item kind that is empty or longer than 64 bytes.
    #[error("item kind `{kind}` is not 1 to 64 bytes long")]
    BadKind {
        /// The kind that was given.
        kind: String,
    },
    /// A time the queue cannot store (outside the years 1678 to 2261).
    #[error("time {at} is outside the range the queue stores (years 1678 to 2261)")]
    TimeOutOfRange {
        /// The time that was given.
        at: OffsetDateTime,
    },
    /// An acknowledgement of a sequence number that was never pushed.
    #[error(
        "acknowledgement up to seq {up_to} is beyond the last pushed seq {last_pushed}; the receiver and the queue disagree"
    )]
    AckBeyondEnd {
        /// The sequence number acknowledged.
        up_to: u64,
        /// The last sequence number pushed (0 when none was).
        last_pushed: u64,
    },
}

fn disk_full_detail(dropped: u64) -> String {
    if dropped == 0 {
        "the push failed and the queue holds no item to drop".to_owned()
    } else {
        format!(
            "dropped the oldest {dropped} items (recorded as a disk_full gap) and the push still failed"
        )
    }
}
