-- What reports read instead of a month of raw scan bundles (issue 19): per UTC day, per device
-- and per check, the pass and fail counts and the newest result of the day; per day and bundle
-- kind, how many bundles and their seq range. Derived data, not evidence: triggers keep it in the
-- transaction that stores each bundle, this migration fills it from the bundles already stored,
-- and `Store::rebuild_report_summary` rebuilds it from the log. Reports name the bundles they
-- summarise, and `osiris evidence verify-report` recomputes them from the bundles themselves.
-- Bundle times are RFC 3339 UTC with milliseconds (`evidence::log::format_time`), so the first
-- ten characters are the day and text order is time order.

-- `source` is 'scan' (target: the scanned target's name) or 'agent' (target: the agent id, which
-- a report turns into the host name of the agent's enrollment).
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

-- One row per check result of the scan and agent_result bundles (malformed results are left out:
-- the summary never stops a bundle from being stored).
CREATE VIEW evidence_results AS
SELECT e.seq AS seq,
       'scan' AS source,
       CAST(e.line AS TEXT) ->> '$.time' AS at,
       CAST(e.line AS TEXT) ->> '$.body.target.name' AS target,
       iif(r.type = 'object', r.value ->> '$.check', NULL) AS check_id,
       iif(r.type = 'object', r.value ->> '$.status', NULL) AS status,
       iif(r.type = 'object', COALESCE(r.value -> '$.observed', 'null'), NULL) AS observed,
       iif(r.type = 'object', COALESCE(r.value ->> '$.reason', ''), NULL) AS reason
FROM evidence AS e, json_each(CAST(e.line AS TEXT), '$.body.results') AS r
WHERE e.kind = 'scan'
UNION ALL
SELECT e.seq,
       'agent',
       CAST(e.line AS TEXT) ->> '$.time',
       CAST(e.line AS TEXT) ->> '$.body.agent_id',
       CAST(e.line AS TEXT) ->> '$.body.check_id',
       CAST(e.line AS TEXT) ->> '$.body.status',
       COALESCE(CAST(e.line AS TEXT) -> '$.body.facts', '{}'),
       'reported by endpoint agent ' || (CAST(e.line AS TEXT) ->> '$.body.agent_id')
FROM evidence AS e
WHERE e.kind = 'agent_result';

CREATE VIEW evidence_bundle_times AS
SELECT seq, kind, CAST(line AS TEXT) ->> '$.time' AS at
FROM evidence
WHERE kind IN ('scan', 'agent_result');

CREATE TRIGGER evidence_summary AFTER INSERT ON evidence
WHEN NEW.kind IN ('scan', 'agent_result')
BEGIN
    INSERT INTO bundle_days (day, kind, bundles, first_seq, last_seq, first_at)
    SELECT substr(at, 1, 10), kind, 1, seq, seq, at
    FROM evidence_bundle_times
    WHERE seq = NEW.seq AND typeof(at) = 'text'
    ON CONFLICT (day, kind) DO UPDATE SET
        bundles = bundles + 1,
        first_seq = min(first_seq, excluded.first_seq),
        last_seq = max(last_seq, excluded.last_seq),
        first_at = min(first_at, excluded.first_at);
    INSERT INTO check_days (day, source, target, check_id, passes, fails, status, observed, reason, at, seq)
    SELECT substr(at, 1, 10), source, target, check_id, status = 'pass', status = 'fail',
           status, observed, reason, at, seq
    FROM evidence_results
    WHERE seq = NEW.seq AND typeof(at) = 'text' AND typeof(target) = 'text'
      AND typeof(check_id) = 'text' AND typeof(status) = 'text'
    ON CONFLICT (day, source, target, check_id) DO UPDATE SET
        passes = passes + excluded.passes,
        fails = fails + excluded.fails,
        status = iif(excluded.at >= at, excluded.status, status),
        observed = iif(excluded.at >= at, excluded.observed, observed),
        reason = iif(excluded.at >= at, excluded.reason, reason),
        seq = iif(excluded.at >= at, excluded.seq, seq),
        at = max(at, excluded.at);
END;
