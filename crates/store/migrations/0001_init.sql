-- Evidence log, checkpoints, OpenTimestamps proofs and appliance metadata.

-- One row per sealed bundle; `seq` is the Merkle leaf index.
CREATE TABLE evidence (
    seq INTEGER PRIMARY KEY,
    line BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    line_hash BLOB NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The evidence log is append-only: the database refuses to change or remove a row.
CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only: rows cannot be updated');
END;

CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only: rows cannot be deleted');
END;

-- Signed checkpoints (C2SP signed notes), one per tree size.
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- OpenTimestamps proofs of checkpoint files; a pending proof is replaced by its upgrade.
CREATE TABLE ots_proofs (
    checkpoint_size INTEGER PRIMARY KEY REFERENCES checkpoints(size),
    proof BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'anchored')),
    calendars TEXT NOT NULL,
    bitcoin_height INTEGER,
    updated_at TEXT NOT NULL
);

-- Appliance-wide settings, such as the id of the key that owns this database.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
