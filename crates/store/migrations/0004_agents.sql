-- The endpoint agents' registry (issue 17): enrollment tokens (only their SHA-256 is kept), the
-- enrolled agents with their device key and client certificates, and how far each agent's
-- sequence is durably stored. `stored_seq` is updated in the same transaction as the evidence
-- bundles that record the items, so an item is sealed exactly once however often it is resent.
CREATE TABLE agent_tokens (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
    uses_total INTEGER NOT NULL CHECK (uses_total >= 1),
    uses_left INTEGER NOT NULL CHECK (uses_left >= 0 AND uses_left <= uses_total),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    os TEXT NOT NULL,
    os_version TEXT NOT NULL,
    platform TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    device_public_key BLOB NOT NULL CHECK (length(device_public_key) = 32),
    cert_sha256 BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),
    cert_not_after INTEGER NOT NULL,
    -- The certificate before the last renewal, accepted until it expires (the agent may not have
    -- stored the new one yet).
    prev_cert_sha256 BLOB CHECK (prev_cert_sha256 IS NULL OR length(prev_cert_sha256) = 32),
    prev_cert_not_after INTEGER,
    token_id TEXT NOT NULL REFERENCES agent_tokens(id),
    enrolled_at INTEGER NOT NULL,
    enrollment_seq INTEGER NOT NULL REFERENCES evidence(seq),
    revoked_at INTEGER,
    revocation_seq INTEGER REFERENCES evidence(seq),
    stored_seq INTEGER NOT NULL DEFAULT 0 CHECK (stored_seq >= 0),
    last_seen_at INTEGER
);
CREATE INDEX agents_by_prev_cert ON agents(prev_cert_sha256) WHERE prev_cert_sha256 IS NOT NULL;
