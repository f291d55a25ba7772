-- What reports read instead of a month of raw scan bundles (issue 19): per UTC day, per device
-- and per check, the pass and fail counts and the newest result of the day; per day and bundle
-- kind, how many bundles and their seq range. Derived data, not evidence: the store fills in
-- what is missing (`meta` key `report_summary_through`, the seq up to which it is complete; all
-- of it after this migration) before each checkpoint and when a report opens the store
-- (`LogReader::open_migrated`), never on the append path;
-- readers take the bundles after `report_summary_through` from the log itself, and
-- `Store::rebuild_report_summary` starts it over. Reports name the bundles they summarise;
-- `osiris evidence verify-report` recomputes them from the bundles.

-- `source` is 'scan' (target: the scanned target's name) or 'agent' (target: the agent id, which
-- a report turns into the host name of the agent's enrollment). Times are the bundles' RFC 3339
-- UTC times with milliseconds (`evidence::log::format_time`): text order is time order.
CREATE TABLE check_days (
    day TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('scan', 'agent')),
    target TEXT NOT NULL,
    check_id TEXT NOT NULL,
    passes INTEGER NOT NULL,
    fails INTEGER NOT NULL,
    status TEXT NOT NULL,
    observed TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (day, source, target, check_id)
) WITHOUT ROWID;

CREATE TABLE bundle_days (
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    bundles INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    PRIMARY KEY (day, kind)
) WITHOUT ROWID;

-- The few attestation, exception and enrollment bundles among a million scans, without a scan.
CREATE INDEX evidence_by_kind ON evidence (kind, seq);
