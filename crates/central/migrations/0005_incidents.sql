-- What appliances report of their operations: incidents with their phase changes, the healing
-- log, and each appliance's software and update state. No reason texts, no observed values.

-- One problem of one device and check. The appliance's id and opening time name it together
-- (an appliance whose state was reset starts its ids again). Rows are kept after the appliance
-- forgets a closed incident: this is the partner's history.
CREATE TABLE incidents (
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    incident_id     BIGINT NOT NULL CHECK (incident_id >= 0),
    opened_at       TIMESTAMPTZ NOT NULL,
    device          TEXT NOT NULL CHECK (length(device) BETWEEN 1 AND 255),
    check_id        TEXT NOT NULL CHECK (length(check_id) BETWEEN 1 AND 64),
    severity        TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    phase           TEXT NOT NULL CHECK (phase IN ('open', 'healing', 'escalated', 'resolved', 'closed')),
    updated_at      TIMESTAMPTZ NOT NULL,
    occurrences     INTEGER NOT NULL CHECK (occurrences >= 0),
    flapping        BOOLEAN NOT NULL,
    acknowledged    BOOLEAN NOT NULL,
    transitions     JSONB NOT NULL DEFAULT '[]'::jsonb,
    observed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (appliance_id, incident_id, opened_at)
);
CREATE INDEX incidents_needing_a_person ON incidents (appliance_id) WHERE phase IN ('open', 'healing', 'escalated');

-- What each healing tier did, one row per attempt, in the appliance's order.
CREATE TABLE healing_log (
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    entry_id        BIGINT NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    device          TEXT NOT NULL CHECK (length(device) BETWEEN 1 AND 255),
    check_id        TEXT NOT NULL CHECK (length(check_id) BETWEEN 1 AND 64),
    tier            TEXT NOT NULL CHECK (tier IN ('L1', 'L2', 'L3')),
    rule            TEXT CHECK (length(rule) BETWEEN 1 AND 64),
    result          TEXT NOT NULL CHECK (result IN ('fixed', 'not_fixed', 'escalated')),
    evidence_seq    BIGINT CHECK (evidence_seq >= 0),
    PRIMARY KEY (appliance_id, entry_id)
);
CREATE INDEX healing_log_by_time ON healing_log (appliance_id, at);

ALTER TABLE appliances
    ADD COLUMN software_version  TEXT,
    ADD COLUMN update_state      TEXT,
    ADD COLUMN update_available  TEXT,
    ADD COLUMN update_detail     TEXT,
    ADD COLUMN update_observed_at TIMESTAMPTZ;
