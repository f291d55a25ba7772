-- History of L1 remediation attempts: what cool-downs, flap detection, rate limits and the
-- circuit breaker are computed from. The evidence log holds the full before/after record.
CREATE TABLE heal_attempts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    target TEXT NOT NULL,
    check_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('verified', 'failed')),
    evidence_seq INTEGER REFERENCES evidence(seq)
);
CREATE INDEX heal_attempts_by_time ON heal_attempts(at);
