-- What appliances report of their sites: the newest device snapshot and the compliance history.
CREATE TABLE devices (
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    class           TEXT NOT NULL CHECK (class IN ('windows_server', 'workstation', 'linux')),
    status          TEXT NOT NULL CHECK (status IN ('compliant', 'drifted', 'error', 'unknown')),
    last_scan_at    TIMESTAMPTZ,
    checks_total    INTEGER NOT NULL CHECK (checks_total >= 0),
    checks_failed   INTEGER NOT NULL CHECK (checks_failed >= 0),
    failing         JSONB NOT NULL DEFAULT '[]'::jsonb,
    observed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (appliance_id, name)
);

CREATE TABLE compliance (
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    framework       TEXT NOT NULL,
    permille        INTEGER CHECK (permille BETWEEN 0 AND 1000),
    observed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (appliance_id, framework, observed_at)
);
