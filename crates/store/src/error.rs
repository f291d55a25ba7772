//! The store's error type: every way opening, writing or reading the evidence database can fail.

use std::path::PathBuf;
use std::sync::Arc;

/// An error from the evidence store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created or written to.
    #[error(
        "data directory {} is not writable (choose another with --data-dir or fix its permissions)",
        path.display()
    )]
    DataDirNotWritable {
        /// The data directory.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the data directory's lock.
    #[error(
        "data directory {} is in use by another osiris process; stop that process or choose another --data-dir",
        path.display()
    )]
    InUse {
        /// The data directory.
        path: PathBuf,
    },
    /// The appliance key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] evidence::keys::KeyError),
    /// The database was written by a newer build that knows more migrations than this one.
    #[error(
        "database {} was written by a newer osiris (schema version {found}, this build knows up to {known}); upgrade osiris or use another --data-dir",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The newest schema version recorded in the database.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },
    /// The database file is not an SQLite database.
    #[error(
        "{} is not an SQLite database (it is corrupt or something else wrote to it); move it aside and restore it from a backup, or use another --data-dir",
        path.display()
    )]
    NotADatabase {
        /// The database file.
        path: PathBuf,
    },
    /// The database belongs to another appliance key.
    #[error(
        "key {key_appliance} does not belong to database {} (it was created by appliance {db_appliance}); restore that appliance's keys/appliance.key or use another --data-dir",
        path.display()
    )]
    ForeignKey {
        /// The appliance id of the loaded key.
        key_appliance: String,
        /// The appliance id recorded in the database.
        db_appliance: String,
        /// The database file.
        path: PathBuf,
    },
    /// An SQLite operation failed.
    #[error(
        "database {} failed while {action} (check free disk space and the file's permissions)",
        path.display()
    )]
    Database {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
        /// What SQLite reported.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("database {} could not be migrated (restore it from a backup or use another --data-dir)", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// What the migrator reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The stored evidence contradicts itself (for example a gap in the sequence numbers).
    #[error("database {} holds inconsistent evidence: {detail}; restore it from a backup and report this as a bug", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is inconsistent.
        detail: String,
    },
    /// Sealing a bundle failed, so it was not stored.
    #[error("bundle could not be sealed")]
    Seal(#[source] evidence::EvidenceError),
    /// A batch of bundles failed to commit; nothing in it was acknowledged.
    #[error(
        "the batch holding this bundle was not committed, so the bundle was not stored; retry once the cause is fixed"
    )]
    NotCommitted {
        /// Why the commit failed.
        #[source]
        source: Arc<StoreError>,
    },
    /// A proof or checkpoint was asked for a range the log does not have.
    #[error(
        "{what} is outside the log (the log has {size} entries); ask for a smaller index or size"
    )]
    OutOfRange {
        /// What was asked for.
        what: String,
        /// The current number of entries.
        size: u64,
    },
    /// An OpenTimestamps proof was given for a checkpoint that is not stored.
    #[error(
        "no checkpoint of size {size} is stored; create the checkpoint before storing its OpenTimestamps proof or cosignature"
    )]
    NoSuchCheckpoint {
        /// The checkpoint size that was given.
        size: u64,
    },
    /// Something other than a link message was to be signed with the appliance key.
    #[error("only messages of the link to Central Command are signed this way")]
    NotALinkMessage,
    /// A cosignature line that is not `— <witness> <signature>` on one line.
    #[error("`{0}` is not a cosignature line (expected `— <witness name> <base64>`)")]
    BadCosignature(String),
    /// The writer task has stopped, so the store can no longer write.
    #[error("the evidence writer has stopped (see the earlier error in the log); restart osiris")]
    WriterStopped,
    /// Exporting the auditor kit failed.
    #[error("exporting the auditor kit failed")]
    Export(#[source] evidence::kit::KitError),
}

/// `err` followed by each of its causes, once each (`a: b: c`), for log lines, which print one string.
pub(crate) fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(err), |err| err.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
