-- The monthly compliance packets appliances make on the 1st (docs/REPORTS.md, "The monthly
-- packet"): the appliance's signed `packet` bundle first, then each file it names, checked
-- against its SHA-256 and size on arrival; kept once per appliance and month, and listed and
-- served to the users of that partner (and practice) once every file is in.
CREATE TABLE packets (
    id              BIGSERIAL PRIMARY KEY,
    partner_id      BIGINT NOT NULL,
    appliance_id    BIGINT NOT NULL,
    period          TEXT NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    -- The sealed `packet` bundle: its line as the appliance signed it, and its number.
    bundle_seq      BIGINT NOT NULL CHECK (bundle_seq >= 0),
    bundle_line     BYTEA NOT NULL,
    -- False when the month held no scan evidence (its reports say so).
    evidence        BOOLEAN NOT NULL,
    generated_at    TEXT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Every file the bundle names has arrived.
    complete        BOOLEAN NOT NULL DEFAULT false,
    FOREIGN KEY (appliance_id, partner_id) REFERENCES appliances (id, partner_id),
    UNIQUE (appliance_id, period)
);
CREATE INDEX packets_by_partner ON packets (partner_id, period DESC);

CREATE TABLE packet_files (
    packet_id       BIGINT NOT NULL REFERENCES packets (id),
    name            TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$'),
    sha256          BYTEA NOT NULL CHECK (length(sha256) = 32),
    size_bytes      BIGINT NOT NULL CHECK (size_bytes >= 0),
    -- NULL until the file has arrived.
    content         BYTEA,
    PRIMARY KEY (packet_id, name),
    CHECK (content IS NULL OR length(content) = size_bytes)
);
