-- Witness cosignatures (C2SP tlog-cosignature lines) of stored checkpoints, as Central Command
-- returned them; one per checkpoint and witness name. Kits carry them beside the checkpoints.
CREATE TABLE cosignatures (
    checkpoint_size INTEGER NOT NULL REFERENCES checkpoints(size),
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (checkpoint_size, witness)
);
