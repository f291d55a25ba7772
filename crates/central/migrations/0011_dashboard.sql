-- What the partner's pages read at a glance, kept current when a device snapshot arrives so
-- that no page aggregates hundreds of thousands of device rows per request.

-- Per appliance: device counts of its newest snapshot and its newest compliance per framework.
ALTER TABLE appliances
    ADD COLUMN devices_total        INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN devices_failing      INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN workstations_known   INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN workstations_checked INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN compliance_now       JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN devices_observed_at  TIMESTAMPTZ;

-- Why a known device was not checked, in a fixed vocabulary (never a host's own words).
ALTER TABLE devices
    ADD COLUMN unchecked TEXT CHECK (unchecked IN ('not_scanned_yet', 'unreachable', 'login_refused', 'scan_failed'));

-- A device's verdict each time it changed: the device page's checks over time.
CREATE TABLE device_history (
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    name            TEXT NOT NULL,
    observed_at     TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL,
    checks_total    INTEGER NOT NULL,
    failing         JSONB NOT NULL,
    PRIMARY KEY (appliance_id, name, observed_at)
);

-- The last compliance of each day per appliance and framework: the 90-day trend charts.
CREATE TABLE compliance_daily (
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    framework       TEXT NOT NULL,
    day             DATE NOT NULL,
    permille        INTEGER CHECK (permille BETWEEN 0 AND 1000),
    PRIMARY KEY (appliance_id, framework, day)
);
CREATE INDEX compliance_daily_by_day ON compliance_daily (day, framework);

-- The same summed per partner (total of the appliances' values and how many reported), kept in
-- step with compliance_daily, so the partner's trend reads 90 rows, not one per appliance-day.
CREATE TABLE compliance_daily_partner (
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    framework       TEXT NOT NULL,
    day             DATE NOT NULL,
    total           BIGINT NOT NULL,
    reports         INTEGER NOT NULL,
    PRIMARY KEY (partner_id, framework, day)
);

CREATE INDEX appliances_site ON appliances (site_id);
CREATE INDEX witness_forks_appliance ON witness_forks (appliance_id);
CREATE INDEX sites_partner ON sites (partner_id, practice_id);
CREATE INDEX incidents_by_device ON incidents (appliance_id, device);
CREATE INDEX healing_log_by_device ON healing_log (appliance_id, device, at);

-- The appliance's OpenTimestamps anchoring as its newest update state reported it.
ALTER TABLE appliances ADD COLUMN ots_pending BIGINT, ADD COLUMN ots_anchored BIGINT;
