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
    /// Another process (or another `Queue` in this one) has the queue open.
    #[error(
        "queue {} is in use by another process; stop that process or use another path",
        path.display()
    )]
    InUse {
        /// The queue's anchor file.
        path: PathBuf,
    },
    /// The queue's anchor file could not be created or opened.
    #[error("queue {} could not be created or opened", path.display())]
    Create {
        /// The queue's anchor file.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The file at the queue's path is not a queue (for example the SQLite queue of an earlier build).
    #[error(
        "{} is not an agent queue (an earlier build's SQLite queue, a damaged file or something else); move it aside",
        path.display()
    )]
    NotAQueue {
        /// The queue's anchor file.
        path: PathBuf,
    },
    /// The queue was written in a format this build does not know (by a newer agent).
    #[error("queue {} has format {format:?}, which this build does not read; move it aside", path.display())]
    Format {
        /// The queue's anchor file.
        path: PathBuf,
        /// The format its anchor names.
        format: String,
    },
    /// Reading or writing one of the queue's files failed; nothing of the operation was stored.
    #[error(
        "queue file {} failed while {action} (check free disk space and the file's permissions)",
        path.display()
    )]
    Io {
        /// The file (or directory).
        path: PathBuf,
        /// What the queue was doing.
        action: &'static str,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The disk (or a quota) refused a push even after the oldest items were dropped to make
    /// room; the item was not stored, the queue still holds everything else.
    #[error(
        "queue {} is out of disk space: {}; free disk space",
        path.display(),
        disk_full_detail(*dropped)
    )]
    DiskFull {
        /// The queue's anchor file.
        path: PathBuf,
        /// How many items were dropped trying to make room (0 when the queue held none).
        dropped: u64,
        /// What the operating system reported on the last attempt.
        #[source]
        source: std::io::Error,
    },
    /// The stored queue contradicts itself (whole records that cannot follow each other).
    #[error("queue file {} is inconsistent: {detail}; move the queue's files aside and report this as a bug", path.display())]
    Corrupt {
        /// The file that holds the contradiction.
        path: PathBuf,
        /// What is inconsistent, and where.
        detail: String,
    },
    /// A queue file holds bytes that fail their checksum with readable records after them (the
    /// storage damaged them; a write cut short by a crash is only ever at the very end and is
    /// discarded at open instead). Nothing is changed or skipped.
    #[error(
        "queue file {} is damaged at offset {offset}: {detail}; nothing was changed; move the queue's files aside",
        path.display()
    )]
    Damaged {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage begins.
        offset: u64,
        /// What is wrong there.
        detail: String,
    },
    /// One item is larger than the whole queue may hold (or than the 64 MiB the format stores).
    #[error("an item of {size} bytes cannot be queued: the queue holds at most {max_bytes} bytes")]
    ItemTooLarge {
        /// The payload's size.
        size: u64,
        /// The queue's `max_bytes`, or the format's limit when that is smaller.
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
