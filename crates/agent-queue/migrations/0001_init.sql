-- The agent's offline queue: items waiting for the appliance's acknowledgement, the gaps left
-- where items had to be dropped, and the counters that must survive every restart.

-- One row. `next_seq` is never lowered, so a sequence number is never handed out twice, even
-- after every item has been acknowledged or dropped. `dropped` counts every sequence number
-- ever turned into a gap.
CREATE TABLE counters (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq INTEGER NOT NULL CHECK (next_seq >= 1),
    acked_through INTEGER NOT NULL CHECK (acked_through >= 0 AND acked_through < next_seq),
    dropped INTEGER NOT NULL CHECK (dropped >= 0)
) STRICT;

INSERT INTO counters (id, next_seq, acked_through, dropped) VALUES (1, 1, 0, 0);

-- Items not yet acknowledged; `at_ns` is the caller's time in Unix nanoseconds (UTC).
CREATE TABLE items (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    at_ns INTEGER NOT NULL
) STRICT;

-- Ranges of sequence numbers whose items were dropped, and why; they precede every item.
CREATE TABLE gaps (
    first INTEGER PRIMARY KEY CHECK (first >= 1),
    last INTEGER NOT NULL CHECK (last >= first),
    reason TEXT NOT NULL CHECK (reason IN ('queue_full', 'too_old', 'disk_full'))
) STRICT;
