-- Fills the report summary (migration 0005) from every stored bundle: the same rows the
-- `evidence_summary` trigger keeps, the newest result of a day being the latest time, then the
-- highest seq. Run by migration 0005 and by `Store::rebuild_report_summary` (after emptying it).
INSERT INTO bundle_days (day, kind, bundles, first_seq, last_seq, first_at)
SELECT substr(at, 1, 10), kind, count(*), min(seq), max(seq), min(at)
FROM evidence_bundle_times
WHERE typeof(at) = 'text'
GROUP BY substr(at, 1, 10), kind;

INSERT INTO check_days (day, source, target, check_id, passes, fails, status, observed, reason, at, seq)
SELECT day, source, target, check_id, passes, fails, status, observed, reason, at, seq
FROM (
    -- One max() aggregate: SQLite takes the bare columns from the row that has it.
    SELECT substr(at, 1, 10) AS day, source, target, check_id,
           sum(status = 'pass') AS passes, sum(status = 'fail') AS fails,
           max(at || ' ' || printf('%020d', seq)) AS newest,
           status, observed, reason, at, seq
    FROM evidence_results
    WHERE typeof(at) = 'text' AND typeof(target) = 'text'
      AND typeof(check_id) = 'text' AND typeof(status) = 'text'
    GROUP BY substr(at, 1, 10), source, target, check_id
);
